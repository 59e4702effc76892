// The node's Slurm client inside a Slurm container job (pure planning; the facts come from
// host/slurm-client.ts). A batch script that calls srun, scontrol or sbatch then works in any
// image, also one without Slurm or with another glibc:
//
//   /.strata/slurm/bin/srun            a wrapper (written per job, bound read-only) that runs
//   /.strata/slurm/host/usr/bin/srun   the node's own command, through
//   /.strata/slurm/host/.../ld-linux…  the node's own dynamic loader, with --library-path set to
//   /.strata/slurm/host/usr/lib/…      the node's library directories (bound read-only)
//
// so the image's loader, libraries and ld.so.cache never take part, and nothing else in the image
// sees the node's libraries (no LD_LIBRARY_PATH is set). What the client opens by absolute path is
// bound read-only at that very path: slurm.conf's directory (configless: slurmd's cache), the
// plugin directory, plugstack.conf and the SPANK plugins it names, the munge socket's directory.
// Every source is the node's own (named by root's configuration, resolved on the node) and must be
// unwritable by the job's user all the way from `/`; targets are made in the job's own layer by the
// mount helper like every other bind.

import { createHash } from 'node:crypto';
import { posix } from 'node:path';
import type { Config } from '../../config/types.js';
import { isWithin } from '../../path-within.js';
import { DEFAULT_PATH_ENV } from '../../store/image.js';
import type { PathOwner, SlurmClientFacts } from '../../host/slurm-client.js';
import { SLURM_COMMANDS } from '../../host/slurm-client.js';
import type { BindRequest } from '../job/request.js';
import { RuntimePaths } from '../paths.js';

export const SLURM_CLIENT_ROOT = '/.strata/slurm';
/** Where the wrappers are, inside the container (PATH). */
export const SLURM_CLIENT_BIN = `${SLURM_CLIENT_ROOT}/bin`;
/** Where the node's directories are bound, below their own paths. */
const HOST = `${SLURM_CLIENT_ROOT}/host`;

/** Write the wrappers (executable scripts) into `dir` (shared, in the runtime dir) unless it is there. */
export interface SlurmClientStep {
  op: 'slurm-client';
  dir: string;
  wrappers: { name: string; text: string }[];
}

export interface SlurmClientPlan {
  steps: SlurmClientStep[];
  binds: BindRequest[];
  /** Why the client is not (fully) there, for the admin log. */
  notes: string[];
}

/** Owners a Slurm installation may have besides root: system accounts (slurm, munge). */
const SYSTEM_UID_MAX = 999;
const S_IWGRP = 0o020;
const S_IWOTH = 0o002;
const S_ISVTX = 0o1000;
const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;

/**
 * Why `path` (a real path) is not safe to open as root and bind for a job of `uid`: a directory
 * on its way, or the file itself, that the job's user (or anyone but root and system accounts) could
 * change, except a sticky directory such as /tmp. Undefined when safe.
 */
export function unsafeReason(path: string, owners: Record<string, PathOwner>, uid: number): string | undefined {
  for (let at = path; ; at = posix.dirname(at)) {
    const owner = owners[at];
    if (!owner) return `${at} could not be examined`;
    const sticky = (owner.mode & S_IFMT) === S_IFDIR && (owner.mode & S_ISVTX) !== 0;
    // (A job of root's may use whatever root owns.)
    if ((owner.uid === uid && uid !== 0) || owner.uid > SYSTEM_UID_MAX) return `${at} is owned by uid ${owner.uid}`;
    if (owner.mode & (S_IWGRP | S_IWOTH) && !sticky) return `${at} is writable by others`;
    if (at === '/') return undefined;
  }
}

const quote = (text: string) => `'${text.replace(/'/g, `'\\''`)}'`;

/** A directory bound at its own path must be specific to Slurm, never a whole system directory. */
const tooBroad = (dir: string, config: Pick<Config, 'runtimeDir' | 'store'>) =>
  dir.split('/').filter(Boolean).length < 2 || isWithin(config.runtimeDir, dir) || isWithin(config.store.path, dir);

export function planSlurmClient(facts: SlurmClientFacts | { missing: string }, config: Pick<Config, 'slurmClient' | 'runtimeDir' | 'store'>, uid: number): SlurmClientPlan {
  // The wrappers are the same for every job of a node (and of a user, where a reason names the
  // uid): written once into a directory named by their content, which every such job binds.
  const shared = (wrappers: SlurmClientStep['wrappers'], binds: BindRequest[], notes: string[]): SlurmClientPlan => {
    const dir = new RuntimePaths(config.runtimeDir).slurmClientDir(createHash('sha256').update(JSON.stringify(wrappers)).digest('hex').slice(0, 16));
    const wrapperBind: BindRequest = { source: dir, target: SLURM_CLIENT_BIN, readonly: true, optional: false, recursive: false, trusted: true, automatic: true };
    return { steps: [{ op: 'slurm-client', dir, wrappers }], binds: [wrapperBind, ...binds], notes };
  };
  // Every command then says why, instead of "command not found".
  const unavailable = (why: string): SlurmClientPlan => shared(SLURM_COMMANDS.map((name) => ({ name, text: refusal(name, why) })), [], [`Slurm client not available in containers: ${why}`]);
  if ('missing' in facts) return unavailable(facts.missing);

  const same: BindRequest[] = [];
  const sources: string[] = [];
  const atOwnPath = (item: { path: string; real: string }) => {
    if (same.some((bind) => bind.target === item.path)) return;
    same.push({ source: item.real, target: item.path, readonly: true, optional: true, recursive: false, trusted: true, automatic: true });
    sources.push(item.real);
  };
  const covered = (path: string) => same.some((bind) => isWithin(path, bind.target));

  // slurm.conf's directory (also what it includes, cli_filter.lua, ...), unless it is /etc itself.
  if (tooBroad(facts.confDir.path, config)) atOwnPath(facts.conf);
  else atOwnPath(facts.confDir);
  for (const pluginDir of facts.pluginDirs) if (!tooBroad(pluginDir.path, config)) atOwnPath(pluginDir);
  for (const file of [...facts.plugstack, ...facts.spankPlugins]) if (!covered(file.path)) atOwnPath(file);
  // The munge socket's directory (it survives a restart of munged), or the socket alone when it
  // sits directly in a system directory.
  if (facts.mungeSocket) {
    const socketDir = { path: posix.dirname(facts.mungeSocket.path), real: posix.dirname(facts.mungeSocket.real) };
    atOwnPath(tooBroad(socketDir.path, config) ? facts.mungeSocket : socketDir);
  }

  // libpmix, which the mpi/pmix plugin opens by its compiled-in path: at that path, unless the
  // image has that directory itself (an MPI image's own PMIx stays the one its ranks load).
  for (const dir of facts.pluginLibraryDirs) {
    if (tooBroad(dir.path, config) || covered(dir.path)) continue;
    same.push({ source: dir.real, target: dir.path, readonly: true, optional: true, recursive: false, trusted: true, automatic: true, ifAbsent: true });
    sources.push(dir.real);
  }

  // The node's directories below /.strata/slurm/host: commands, loader, libraries.
  const loader = facts.commands[0].loader;
  const commands = facts.commands.filter((command) => command.loader === loader);
  const libraryDirs = unique([...facts.libraryDirs, ...commands.flatMap((command) => command.runpath), ...facts.pluginDirs.map((d) => d.real), posix.dirname(loader)]);
  const hostDirs = unique([...libraryDirs, ...commands.map((command) => posix.dirname(command.path))]);
  sources.push(...hostDirs, loader, ...commands.map((command) => command.path));
  for (const source of unique(sources)) {
    const why = unsafeReason(source, facts.owners, uid);
    if (why) return unavailable(`${why}, so it cannot be bound safely`);
  }
  const inContainer = (path: string) => `${HOST}${path}`;
  const hostBinds: BindRequest[] = hostDirs.map((source) => ({ source, target: inContainer(source), readonly: true, optional: false, recursive: false, trusted: true, automatic: true }));
  const libraryPath = libraryDirs.map(inContainer).join(':');
  const wrappers = commands.map((command) => ({ name: command.name, text: wrapper(command.name, inContainer(loader), libraryPath, inContainer(command.path)) }));
  return shared(wrappers, [...hostBinds, ...same], []);
}

const unique = (items: string[]) => [...new Set(items)];

function wrapper(name: string, loader: string, libraryPath: string, command: string): string {
  return [
    '#!/bin/sh',
    `# The node's ${name} (strata): its own loader and libraries, whatever the image's glibc is.`,
    `exec ${quote(loader)} --inhibit-cache --library-path ${quote(libraryPath)} ${quote(command)} "$@"`,
    '',
  ].join('\n');
}

function refusal(name: string, why: string): string {
  return ['#!/bin/sh', `echo ${quote(`strata: ${name}: the node's Slurm client is not available in this container (${why}); tell your admins, or submit with --container-batch=host`)} >&2`, 'exit 127', ''].join('\n');
}

/** The container's PATH with the wrappers' directory first or last (no PATH: the default one). */
export function withSlurmPath(env: string[], position: Config['slurmClient']['path']): string[] {
  const index = env.findIndex((item) => item.startsWith('PATH='));
  const current = (index >= 0 ? env[index] : DEFAULT_PATH_ENV).slice('PATH='.length);
  const path = `PATH=${position === 'first' ? `${SLURM_CLIENT_BIN}:${current}` : `${current}:${SLURM_CLIENT_BIN}`}`;
  return index >= 0 ? env.map((item, at) => (at === index ? path : item)) : [...env, path];
}
