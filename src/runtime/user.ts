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

/** The login name of `uid` (whom `~/NAME:TAG` means in a job), or undefined when unknown. */
export async function userNameOf(uid: number): Promise<string | undefined> {
  const find = (passwd: string) => passwd.split('\n').map((line) => line.split(':')).find((fields) => fields.length >= 7 && Number(fields[2]) === uid)?.[0];
  const fromFile = find(readPasswd());
  if (fromFile) return fromFile;
  const result = await runTool('getent', ['passwd', String(uid)]).catch(() => undefined);
  return result?.exitCode === 0 ? find(result.stdout) : undefined;
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

/**
 * A user's uid and primary gid by name (Torque hands the prologue names, not numbers), from
 * /etc/passwd first, then getent. Undefined when the name is unknown.
 */
export async function lookupUser(name: string): Promise<{ uid: number; gid: number } | undefined> {
  const find = (passwd: string) => {
    for (const line of passwd.split('\n')) {
      const fields = line.split(':');
      if (fields.length >= 7 && fields[0] === name) return { uid: Number(fields[2]), gid: Number(fields[3]) };
    }
    return undefined;
  };
  const fromFile = find(readPasswd());
  if (fromFile) return fromFile;
  const result = await runTool('getent', ['passwd', name]).catch(() => undefined);
  return result?.exitCode === 0 ? find(result.stdout) : undefined;
}

/** A group's gid by name, from /etc/group first, then getent. */
export async function lookupGroup(name: string): Promise<number | undefined> {
  const find = (groups: string) => {
    for (const line of groups.split('\n')) {
      const fields = line.split(':');
      if (fields.length >= 3 && fields[0] === name && /^\d+$/.test(fields[2])) return Number(fields[2]);
    }
    return undefined;
  };
  let text = '';
  try {
    text = readFileSync('/etc/group', 'utf8');
  } catch {
    // LDAP/SSSD only: getent below
  }
  const fromFile = find(text);
  if (fromFile !== undefined) return fromFile;
  const result = await runTool('getent', ['group', name]).catch(() => undefined);
  return result?.exitCode === 0 ? find(result.stdout) : undefined;
}
