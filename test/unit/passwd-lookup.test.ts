// The job user's passwd entry: a user only the name service knows (LDAP/SSSD, not in /etc/passwd)
// costs one getent per user for a prolog's questions, not one per question.

import { execLog } from '../../src/host/exec.js';
import { homeOf, userNameOf } from '../../src/host/passwd.js';

const getents = (key: string) => execLog.filter((entry) => entry.command === `/usr/bin/getent passwd ${key}`).length;

test('a uid in no passwd database is asked once for its name and its home, and is unknown', async () => {
  const uid = 3_999_999_917; // in no database on a test machine
  expect(await userNameOf(uid)).toBeUndefined();
  expect(await homeOf(uid)).toBeUndefined();
  expect(await userNameOf(uid)).toBeUndefined();
  expect(getents(String(uid))).toBe(1);
});

test('users in /etc/passwd are found without getent', async () => {
  expect(await userNameOf(0)).toBe('root');
  expect(await homeOf(0)).toBe('/root');
  expect(getents('0')).toBe(0);
});
