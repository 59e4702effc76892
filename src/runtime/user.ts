// The job user's home directory, from the passwd database. /etc/passwd is read first (no process
// spawned); getent covers LDAP/SSSD sites.

import { readFileSync } from 'node:fs';
import { runTool } from '../host/exec.js';

export async function homeOf(uid: number): Promise<string | undefined> {
  const fromFile = findHome(readPasswd(), uid);
  if (fromFile) return fromFile;
  const result = await runTool('getent', ['passwd', String(uid)]).catch(() => undefined);
  return result?.exitCode === 0 ? findHome(result.stdout, uid) : undefined;
}

/** Pure: the home field of the passwd line for `uid`. */
export function findHome(passwd: string, uid: number): string | undefined {
  for (const line of passwd.split('\n')) {
    const fields = line.split(':');
    if (fields.length >= 7 && Number(fields[2]) === uid && fields[5].startsWith('/')) return fields[5];
  }
  return undefined;
}

function readPasswd(): string {
  try {
    return readFileSync('/etc/passwd', 'utf8');
  } catch {
    return '';
  }
}
