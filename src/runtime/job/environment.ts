// What every container gets from the node besides the image (pure planning): the job user's
// identity (passwd and group generated per job, identity.ts), the node's host files (hosts,
// resolv.conf, localtime, a generated hostname), each switchable per site, and a per-job /tmp.
//
// Generated files and the /tmp tmpfs live under the job's directory in the runtime dir (root's:
// trusted) and are bound into the rootfs from there, read-only except /tmp; the node's own files
// are bound from /etc. These binds are "trusted" (opened as root, since strata or the node made
// them) and "automatic" (a user's --container-mounts on the same target replaces them).

import { join } from 'node:path';
import type { Config } from '../../config/types.js';
import type { BindRequest } from './request.js';

/** Generate the job's passwd, group (and hostname) files from the image's and the node's. */
export interface JobFilesStep {
  op: 'job-files';
  /** Directory (under the job's) the files are written to. */
  dir: string;
  /** The mounted rootfs, whose /etc/passwd and /etc/group are read (through the helper). */
  rootfs: string;
  uid: number;
  gid: number;
  hostname: boolean;
}

/** The job's own /tmp: a tmpfs inside a root-only directory, so no other host user reaches it. */
export interface TmpStep {
  op: 'tmp-tmpfs';
  /** Mount point; its parent is created 0700. */
  target: string;
  sizeBytes: number;
}

export interface EnvironmentPlan {
  /** Steps after the rootfs is mounted, before any bind. */
  steps: (JobFilesStep | TmpStep)[];
  binds: BindRequest[];
}

/** The node's files bound as they are, by config key. */
const HOST_FILES = [
  { key: 'hosts', path: '/etc/hosts' },
  { key: 'resolvConf', path: '/etc/resolv.conf' },
  { key: 'localtime', path: '/etc/localtime' },
] as const;

export function planEnvironment(jobDir: string, rootfs: string, uid: number, gid: number, config: Config): EnvironmentPlan {
  const files = join(jobDir, 'etc');
  const tmp = join(jobDir, 'tmp', 't'); // RuntimePaths.job().tmp
  const bind = (source: string, target: string, readonly = true, optional = false): BindRequest => ({
    source,
    target,
    readonly,
    optional,
    recursive: false,
    trusted: true,
    automatic: true,
  });
  const binds = [bind(join(files, 'passwd'), '/etc/passwd'), bind(join(files, 'group'), '/etc/group')];
  if (config.container.hostname) binds.push(bind(join(files, 'hostname'), '/etc/hostname'));
  // A node without one of these files (no DNS config, UTC without a zone file) is no error.
  for (const file of HOST_FILES) if (config.container[file.key]) binds.push(bind(file.path, file.path, true, true));
  binds.push(bind(tmp, '/tmp', false));
  return {
    steps: [
      { op: 'job-files', dir: files, rootfs, uid, gid, hostname: config.container.hostname },
      { op: 'tmp-tmpfs', target: tmp, sizeBytes: config.container.tmpSize },
    ],
    binds,
  };
}
