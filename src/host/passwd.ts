// The job user's entry in the passwd database (home directory, login name, uid and gid by name).
// /etc/passwd is read first (no process spawned); getent covers LDAP/SSSD sites.

import { readFileSync } from 'node:fs';
import { runTool } from './exec.js';

export async function homeOf(uid: number): Promise<string | undefined> {
  return (await passwdEntry(uid, (fields) => fields[5].startsWith('/')))?.[5];
}

/** The login name of `uid` (whom `~/NAME:TAG` means in a job), or undefined when unknown. */
export async function userNameOf(uid: number): Promise<string | undefined> {
  return (await passwdEntry(uid))?.[0];
}

/**
 * A user's uid and primary gid by name (Torque hands the prologue names, not numbers). Undefined
 * when the name is unknown.
 */
export async function lookupUser(name: string): Promise<{ uid: number; gid: number } | undefined> {
  const fields = await passwdEntry(name);
  return fields && { uid: Number(fields[2]), gid: Number(fields[3]) };
}

/**
 * The fields of the passwd line for a uid or a name that `accept` takes: /etc/passwd first (no
 * process spawned), then getent (LDAP/SSSD sites).
 */
async function passwdEntry(key: number | string, accept: (fields: string[]) => boolean = () => true): Promise<string[] | undefined> {
  const fromFile = findPasswdLine(readPasswd(), key, accept);
  if (fromFile) return fromFile;
  const output = await getentPasswd(String(key));
  return output === undefined ? undefined : findPasswdLine(output, key, accept);
}

/**
 * getent's answers, kept for a few seconds: a prolog asks for the same user's name and home, and
 * on an LDAP/SSSD site (users not in /etc/passwd) each question would spawn getent from the node
 * agent again, for every job of a burst. The name service's own cache keeps them longer anyway.
 */
const GETENT_KEEP_MS = 5000;
const getentAnswers = new Map<string, { at: number; output: Promise<string | undefined> }>();
function getentPasswd(key: string): Promise<string | undefined> {
  const now = performance.now();
  for (const [kept, { at }] of getentAnswers) if (now - at > GETENT_KEEP_MS) getentAnswers.delete(kept);
  const known = getentAnswers.get(key);
  if (known) return known.output;
  const output = runTool('getent', ['passwd', key]).then(
    (result) => (result.exitCode === 0 ? result.stdout : undefined),
    () => undefined,
  );
  getentAnswers.set(key, { at: now, output });
  return output;
}

/** Pure: the fields of the first passwd line for `key` (a uid or a name) that `accept` takes. */
function findPasswdLine(passwd: string, key: number | string, accept: (fields: string[]) => boolean = () => true): string[] | undefined {
  for (const line of passwd.split('\n')) {
    const fields = line.split(':');
    if (fields.length >= 7 && (typeof key === 'number' ? Number(fields[2]) === key : fields[0] === key) && accept(fields)) return fields;
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
