// Can this (unprivileged) process make a user namespace? `strata exec` needs one to chroot without
// setuid. The kernel switches that say no are read first, so the answer names the switch to flip;
// a short probe then covers everything else (AppArmor, seccomp, a container's limits).

import { readFileSync } from 'node:fs';
import { firstLine } from '../errors.js';
import { runTool } from './exec.js';
import { TOOLS } from './tools.js';

/** Reads a /proc/sys value; undefined when the knob does not exist on this kernel. */
export type SysctlReader = (name: string) => string | undefined;

export const readSysctl: SysctlReader = (name) => {
  try {
    return readFileSync(`/proc/sys/${name.replace(/\./g, '/')}`, 'utf8').trim();
  } catch {
    return undefined;
  }
};

/** Pure: why user namespaces are switched off, with the fix; undefined if no switch says so. */
export function userNamespaceSwitchedOff(read: SysctlReader): string | undefined {
  if (read('user.max_user_namespaces') === '0') {
    return 'user namespaces are disabled on this node (user.max_user_namespaces = 0); ask your admin to enable them: sysctl -w user.max_user_namespaces=15000';
  }
  if (read('kernel.unprivileged_userns_clone') === '0') {
    return 'unprivileged user namespaces are disabled on this node (kernel.unprivileged_userns_clone = 0); ask your admin to enable them: sysctl -w kernel.unprivileged_userns_clone=1';
  }
  if (read('kernel.apparmor_restrict_unprivileged_userns') === '1') {
    return 'AppArmor restricts unprivileged user namespaces on this node (kernel.apparmor_restrict_unprivileged_userns = 1); ask your admin for an AppArmor profile for strata, or to set it to 0';
  }
  return undefined;
}

/** Try it: a user + mount namespace running /usr/bin/true. The reason it failed, or undefined. */
export async function probeUserNamespace(): Promise<string | undefined> {
  const result = await runTool('unshare', ['--user', '--map-current-user', '--mount', TOOLS.true]).catch((error: Error) => ({ exitCode: -1, stderr: error.message }));
  if (result.exitCode === 0) return undefined;
  const why = firstLine(result.stderr) || `exit status ${result.exitCode}`;
  return `cannot create a user namespace on this node (${why}); ask your admin to enable unprivileged user namespaces (sysctl user.max_user_namespaces, kernel.unprivileged_userns_clone)`;
}
