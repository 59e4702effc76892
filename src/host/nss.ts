// The job user's identity as the node's name service sees it (getent: files, LDAP, SSSD, ... as
// nsswitch.conf says), for the passwd and group files strata generates per job. These lookups are
// the host's own, made as root; nothing here reads the image.

import { runTool } from './exec.js';

export interface HostIdentity {
  /** The user's passwd line, or undefined when the node does not know the uid. */
  passwd?: string;
  /** Lines for the user's primary and supplementary groups that the node knows. */
  groups: string[];
}

/** getent's output lines; an unknown key is no error (exit 2), a missing getent is. */
async function getent(database: string, keys: string[]): Promise<string[]> {
  const result = await runTool('getent', [database, ...keys], { timeoutMs: 10_000 });
  return result.exitCode === 0 || result.exitCode === 2 ? result.stdout.split('\n').filter(Boolean) : [];
}

export async function hostIdentity(uid: number, gid: number): Promise<HostIdentity> {
  // The primary group is looked up at once, with the user; the supplementary ones need the name.
  const [users, primary] = await Promise.all([getent('passwd', [String(uid)]), getent('group', [String(gid)])]);
  const passwd = users.find((line) => line.split(':')[2] === String(uid));
  const name = passwd?.split(':')[0];
  // initgroups asks NSS exactly what Slurm's initgroups(3) gives the job's processes.
  const member = name ? ((await getent('initgroups', [name]))[0]?.trim().split(/\s+/).slice(1) ?? []) : [];
  const others = [...new Set(member.filter((value) => /^\d+$/.test(value) && value !== String(gid)))];
  const groups = [...primary.filter((line) => line.split(':')[2] === String(gid)), ...(others.length ? await getent('group', others) : [])];
  return { passwd, groups };
}
