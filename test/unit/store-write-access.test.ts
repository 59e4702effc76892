// Who may write the store and where a user's writes go (store/write/route.ts, store/ref.ts).

import { planStoreWrite, userTag } from '../../src/store/write/route.js';
import { namespaceOf, parseImageRef } from '../../src/store/ref.js';
import { expectUserError } from '../helpers/errors.js';

const owner = { uid: 990, gid: 990, name: 'strata' };
const alice = { uid: 1001, gid: 1001, name: 'alice' };
const root = { uid: 0, gid: 0, name: 'root' };
const plan = (caller: typeof owner, userImports = false, storeOwner: typeof owner | undefined = owner) => planStoreWrite({ caller, owner: storeOwner, root: '/lustre/strata', userImports });

describe('planStoreWrite', () => {
  test('the owner writes directly; so does anyone creating the store', () => {
    expect(plan(owner)).toEqual({ how: 'direct' });
    expect(planStoreWrite({ caller: alice, owner: undefined, root: '/lustre/strata', userImports: false })).toEqual({ how: 'direct' });
    expect(plan(root, false, root)).toEqual({ how: 'direct' });
  });

  test("root writes a service account's store as that account", () => {
    expect(plan(root)).toEqual({ how: 'relay', launch: { how: 'setpriv', ownerUid: 990, ownerGid: 990 }, owner });
  });

  test('a user is refused, naming the owner and the setting, unless user imports are on', () => {
    const error = expectUserError(() => plan(alice), 'E_STORE_DENIED');
    expect(error.message).toBe('you (alice) cannot write the image store /lustre/strata: it belongs to strata');
    expect(error.hint).toMatch(/import\.user_imports/);
    expect(plan(alice, true)).toEqual({ how: 'relay', launch: { how: 'sudo', ownerUid: 990 }, owner, user: 'alice' });
  });

  test('a login name that cannot be a namespace is refused', () => {
    expect(expectUserError(() => plan({ ...alice, name: 'al/ice' }, true), 'E_STORE_DENIED').message).toMatch(/login name/);
  });
});

describe('userTag', () => {
  test.each([
    ['tool:1', '~alice/tool:1'],
    ['~/tool:1', '~alice/tool:1'],
    ['~alice/tool:1', '~alice/tool:1'],
    ['ghcr.io/me/tool', '~alice/ghcr.io/me/tool:latest'],
  ])('%s → %s', (text, expected) => {
    const { name, tag } = userTag(text, 'alice');
    expect(`${name}:${tag}`).toBe(expected);
  });

  test("another user's namespace is refused", () => {
    expect(expectUserError(() => userTag('~bob/tool:1', 'alice'), 'E_STORE_DENIED').message).toBe('you (alice) can only write tags in your own namespace ~alice/, not in ~bob/');
  });
});

describe('~USER/ references', () => {
  test('parse, with ~/ standing for the given user', () => {
    expect(parseImageRef('~alice/tool:1')).toEqual({ name: '~alice/tool', tag: '1', digest: undefined });
    expect(parseImageRef('~/tool', 'bob')).toEqual({ name: '~bob/tool', tag: 'latest', digest: undefined });
    expect(namespaceOf('~alice/tool')).toBe('alice');
    expect(namespaceOf('pytorch')).toBeUndefined();
  });

  test('~/ without a user, ~ inside a name, and a shell-expanded ~/ are refused with what to do', () => {
    expect(expectUserError(() => parseImageRef('~/tool:1'), 'E_BAD_REF').message).toMatch(/name the user, as in ~USER\/NAME:TAG/);
    expectUserError(() => parseImageRef('tools/~alice/x:1'), 'E_BAD_REF');
    expectUserError(() => parseImageRef('~/'), 'E_BAD_REF');
    expect(expectUserError(() => parseImageRef('/home/alice/tool:1'), 'E_BAD_REF').hint).toMatch(/--container-image=~\/NAME:TAG/);
  });
});
