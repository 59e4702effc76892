// The job user's identity inside the container: /etc/passwd and /etc/group generated per job from
// the image's own files merged with the node's entries for the user (NSS: files, LDAP, SSSD), plus
// root and nobody. The files are written under the job's directory (root's, trusted) and bound
// read-only over the image's; the image itself is never changed.
//
// The image's files are image content, so root reads them only through the mount helper's
// `readfile` (confined to the rootfs, no final symlink, regular files only, size-capped: see
// helper/image-files.c). Whatever the image put there instead (a link to a host file, a FIFO, a
// directory, a huge file) only means the image's own entries are left out.

import { mkdirSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { readImageFile } from '../../host/job-mounts.js';
import type { IdentityLookup } from '../../host/nss.js';
import { nodeError } from '../../errors.js';
import type { JobFilesStep } from './environment.js';

/** Larger passwd or group files than this in an image are ignored (a few thousand lines fit). */
export const IMAGE_FILE_MAX = 1024 * 1024;

const ROOT_USER = 'root:x:0:0:root:/root:/bin/sh';
const NOBODY_USER = 'nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin';

const fieldsOf = (text: string, count: number) =>
  text
    .split('\n')
    .map((line) => line.replace(/\r$/, ''))
    .filter((line) => line && !line.startsWith('#'))
    .map((line) => line.split(':'))
    .filter((fields) => fields.length === count && fields[0] !== '' && /^\d+$/.test(fields[2]));

/** Pure: the image's passwd lines, the user's own replacing any of the same name or uid. */
export function mergePasswd(image: string, user: string | undefined): string {
  const own = user?.split(':');
  const kept = fieldsOf(image, 7).filter((fields) => !own || (fields[0] !== own[0] && fields[2] !== own[2]));
  const lines = kept.map((fields) => fields.join(':'));
  if (user) lines.push(user);
  const all = [...kept, ...(own ? [own] : [])];
  if (!all.some((fields) => fields[2] === '0')) lines.unshift(ROOT_USER);
  if (!all.some((fields) => fields[0] === 'nobody' || fields[2] === '65534')) lines.push(NOBODY_USER);
  return `${lines.join('\n')}\n`;
}

/**
 * Pure: the image's group lines, the user's groups (from the node) replacing any of the same name
 * or gid. The user is listed as the only member of their supplementary groups: the node's full
 * member lists are neither needed inside nor anyone else's business.
 */
export function mergeGroups(image: string, hostGroups: string[], userName: string | undefined, primaryGid: number): string {
  const host = hostGroups.map((line) => line.split(':')).filter((fields) => fields.length === 4 && /^\d+$/.test(fields[2]));
  const kept = fieldsOf(image, 4).filter((fields) => !host.some((own) => own[0] === fields[0] || own[2] === fields[2]));
  const lines = kept.map((fields) => fields.join(':'));
  for (const fields of host) {
    const members = userName && Number(fields[2]) !== primaryGid ? userName : '';
    lines.push(`${fields[0]}:x:${fields[2]}:${members}`);
  }
  const all = [...kept, ...host];
  if (!all.some((fields) => fields[2] === '0')) lines.unshift('root:x:0:');
  if (!all.some((fields) => fields[2] === '65534')) lines.push('nogroup:x:65534:');
  return `${lines.join('\n')}\n`;
}

/** errnos of the node, not of the image: these fail the prolog rather than drop the image's entries. */
const NODE_ERRNOS = new Set(['EIO', 'ENOMEM', 'ENFILE', 'EMFILE', 'ENOSYS']);

/** An image file's text through the helper, or '' when the image has no usable regular file there. */
export async function readImageText(rootfs: string, path: string): Promise<string> {
  const reply = await readImageFile(rootfs, path, IMAGE_FILE_MAX);
  if (reply.ok) return Buffer.from(reply.value, 'hex').toString('utf8');
  if (NODE_ERRNOS.has(reply.value) || !reply.stage) {
    throw nodeError('E_IMAGE_READ', `cannot read ${path} of a job's image: ${reply.message}`, { hint: 'check the node (strata doctor)', detail: reply.value });
  }
  return '';
}

/** Write the job's passwd, group (and hostname) under step.dir, with the node's entries `lookup` collects. */
export async function writeJobFiles(step: JobFilesStep, lookup: IdentityLookup): Promise<void> {
  const [passwd, group, host] = await Promise.all([readImageText(step.rootfs, '/etc/passwd'), readImageText(step.rootfs, '/etc/group'), lookup()]);
  const userName = host.passwd?.split(':')[0];
  mkdirSync(step.dir, { mode: 0o755 });
  const write = (name: string, text: string) => writeFileSync(join(step.dir, name), text, { mode: 0o644, flag: 'wx' });
  write('passwd', mergePasswd(passwd, host.passwd));
  write('group', mergeGroups(group, host.groups, userName, step.gid));
  if (step.hostname) write('hostname', `${hostname()}\n`);
}
