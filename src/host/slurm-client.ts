// What the node's Slurm client consists of, read from the node by root: slurm.conf (the one slurmd
// uses, named by SLURM_CONF in the prolog's environment), the plugin directory, plugstack.conf and
// the SPANK plugins it names, the munge socket, the client commands with the loader and run path
// they name, and the owner and mode of every directory on the way to each of them. These are the
// node's own files (root's configuration names them), never the image's or a user's; whether it is
// safe to bind them is decided by the pure planner (runtime/slurm-client/plan.ts) from `owners`.

import { closeSync, lstatSync, openSync, readFileSync, readSync, readdirSync, realpathSync } from 'node:fs';
import { dirname, isAbsolute, join, posix } from 'node:path';
import type { Config } from '../config/types.js';
import { parseSlurmConf } from '../scheduler/slurm-conf.js';
import { parsePlugstack } from '../runtime/slurm-client/plugstack.js';
import { readElfDynamic, type ReadAt } from '../runtime/slurm-client/elf-dynamic.js';

/** The user commands strata makes available, in the order they are looked for. */
export const SLURM_COMMANDS = ['srun', 'sbatch', 'salloc', 'scontrol', 'squeue', 'scancel', 'sinfo', 'sacct', 'sstat', 'sattach', 'sbcast', 'sprio', 'sshare', 'sreport', 'sacctmgr', 'sdiag', 'strigger'] as const;

export interface SlurmCommand {
  name: string;
  /** Real path on the node. */
  path: string;
  /** Real path of the loader it names (PT_INTERP). */
  loader: string;
  /** Real paths of its run path. */
  runpath: string[];
}

export interface PathOwner {
  uid: number;
  mode: number;
}

export interface SlurmClientFacts {
  /** slurm.conf as the client names it, and its real path. */
  conf: { path: string; real: string };
  /** Its directory, as named, and real (configless: slurmd's cache behind /run/slurm/conf). */
  confDir: { path: string; real: string };
  /** PluginDir entries (slurm.conf, else the commands' run path): as named, and real. */
  pluginDirs: { path: string; real: string }[];
  /** plugstack.conf and the files it includes, as named, and real. */
  plugstack: { path: string; real: string }[];
  /** Absolute SPANK plugin files named in plugstack, as named, and real. */
  spankPlugins: { path: string; real: string }[];
  /** The munge socket (AuthInfo socket=, else libmunge's default), as named, and real. */
  mungeSocket?: { path: string; real: string };
  commands: SlurmCommand[];
  /** Extra library directories from the config, real. */
  libraryDirs: string[];
  /**
   * Directories plugins load a library from by absolute path, compiled in (mpi/pmix's libpmix:
   * srun loads it for MpiDefault=pmix or --mpi=pmix), as named, and real.
   */
  pluginLibraryDirs: { path: string; real: string }[];
  /** lstat of every real path above and of each directory on its way from `/`. */
  owners: Record<string, PathOwner>;
}

/** libmunge's compiled-in socket (Debian, RHEL). */
const MUNGE_SOCKET = '/run/munge/munge.socket.2';

const real = (path: string) => {
  try {
    return realpathSync.native(path);
  } catch {
    return undefined;
  }
};
const named = (path: string) => {
  const resolved = real(path);
  return resolved ? { path, real: resolved } : undefined;
};

/**
 * The node's Slurm client as slurmd's environment names it, or the reason why there is none
 * usable (no slurm.conf, no commands, a static or foreign command).
 */
export function gatherSlurmClient(env: NodeJS.ProcessEnv, config: Pick<Config, 'slurmClient'>): SlurmClientFacts | { missing: string } {
  // Whatever goes wrong here costs the job its Slurm commands (they then say why), never the job.
  try {
    return gather(env, config);
  } catch (error) {
    return { missing: `cannot read the node's Slurm client: ${(error as Error).message}` };
  }
}

function gather(env: NodeJS.ProcessEnv, config: Pick<Config, 'slurmClient'>): SlurmClientFacts | { missing: string } {
  const confPath = env.SLURM_CONF || '/etc/slurm/slurm.conf';
  const conf = named(confPath);
  const confDir = named(posix.dirname(confPath));
  let text: string;
  try {
    text = readFileSync(confPath, 'utf8');
  } catch (error) {
    return { missing: `cannot read ${confPath}: ${(error as NodeJS.ErrnoException).code ?? String(error)}` };
  }
  const settings = parseSlurmConf(text);
  const commands: SlurmCommand[] = [];
  for (const name of SLURM_COMMANDS) {
    const found = config.slurmClient.binDirs.map((dir) => real(join(dir, name))).find(Boolean);
    if (!found) continue;
    const dynamic = withFile(found, (read) => readElfDynamic(read, found));
    if (!dynamic || 'error' in dynamic || !dynamic.interpreter) continue;
    const loader = real(dynamic.interpreter);
    if (!loader) continue;
    commands.push({ name, path: found, loader, runpath: dynamic.runpath.map(real).filter((dir): dir is string => Boolean(dir)) });
  }
  if (!conf || !confDir) return { missing: `cannot read ${confPath}` };
  if (!commands.length) return { missing: `no Slurm command (${SLURM_COMMANDS.slice(0, 3).join(', ')}, ...) in ${config.slurmClient.binDirs.join(', ')}` };

  // PluginDir is a colon-separated list; Slurm's compiled-in default is where libslurmfull lives,
  // which is also the commands' run path.
  const pluginDirNames = settings.get('plugindir')?.split(':').filter(Boolean) ?? commands[0].runpath;
  const pluginDirs = pluginDirNames.map(named).filter(isNamed);
  const plugstackPath = settings.get('plugstackconfig') || posix.join(posix.dirname(confPath), 'plugstack.conf');
  const plugstack: { path: string; real: string }[] = [];
  const spankPlugins: { path: string; real: string }[] = [];
  readPlugstack(plugstackPath, plugstack, spankPlugins, 0);

  const authType = settings.get('authtype') ?? 'auth/munge';
  const socket = /(?:^|,)\s*socket=([^,]+)/.exec(settings.get('authinfo') ?? '')?.[1]?.trim() ?? MUNGE_SOCKET;
  const mungeSocket = authType === 'auth/munge' && isAbsolute(socket) ? named(socket) : undefined;
  const libraryDirs = config.slurmClient.libraryDirs.map(real).filter((dir): dir is string => Boolean(dir));

  const pluginLibraryDirs = pmixLibraryDirs(pluginDirs.map((dir) => dir.real));

  const facts: SlurmClientFacts = { conf, confDir, pluginDirs, plugstack, spankPlugins, ...(mungeSocket ? { mungeSocket } : {}), commands, libraryDirs, pluginLibraryDirs, owners: {} };
  const paths = [conf.real, confDir.real, ...pluginDirs.map((d) => d.real), ...plugstack.map((f) => f.real), ...spankPlugins.map((f) => f.real), ...(mungeSocket ? [mungeSocket.real] : []), ...libraryDirs, ...pluginLibraryDirs.map((d) => d.real)];
  for (const command of commands) paths.push(command.path, command.loader, ...command.runpath);
  for (const path of paths) recordOwners(path, facts.owners);
  return facts;
}

/** mpi/pmix plugins are small; a file this big is not one. */
const PLUGIN_READ_MAX = 16 * 1024 * 1024;

/**
 * Where Slurm's mpi/pmix plugins dlopen libpmix from: Slurm compiles the directory in
 * (`--with-pmix`, e.g. /usr/lib/x86_64-linux-gnu/pmix2/lib) and opens `<dir>/libpmix.so` by that
 * absolute path, so the node's srun fails in a container without it ("can not load PMIx
 * library"). Found as a string in the plugin naming a directory that holds libpmix.so here.
 */
function pmixLibraryDirs(pluginDirs: string[]): { path: string; real: string }[] {
  const found: { path: string; real: string }[] = [];
  for (const dir of pluginDirs) {
    let names: string[];
    try {
      names = readdirSync(dir).filter((name) => /^mpi_pmix.*\.so$/.test(name));
    } catch {
      continue;
    }
    for (const name of names) {
      const text = withFile(join(dir, name), (read) => read(0, PLUGIN_READ_MAX).toString('latin1'));
      for (const candidate of text?.match(/\/[\x21-\x7e]{1,255}(?=\0)/g) ?? []) {
        const library = named(join(candidate, 'libpmix.so'));
        if (library && !found.some((known) => known.path === candidate)) found.push({ path: candidate, real: posix.dirname(library.real) });
      }
    }
  }
  return found;
}

const isNamed = (value: { path: string; real: string } | undefined): value is { path: string; real: string } => Boolean(value);

/** `use` with positional reads of the file at `path`; undefined if it cannot be opened. */
function withFile<T>(path: string, use: (read: ReadAt) => T): T | undefined {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return undefined;
  }
  try {
    return use((offset, length) => {
      const buffer = Buffer.alloc(length);
      return buffer.subarray(0, readSync(fd, buffer, 0, length, offset));
    });
  } finally {
    closeSync(fd);
  }
}

/** plugstack.conf and its includes (a `*` in the last component), at most 4 levels deep. */
function readPlugstack(path: string, files: { path: string; real: string }[], plugins: { path: string; real: string }[], depth: number) {
  const file = named(path);
  if (!file || depth > 4 || files.some((known) => known.real === file.real)) return;
  let text: string;
  try {
    text = readFileSync(file.real, 'utf8');
  } catch {
    return;
  }
  files.push(file);
  const { plugins: listed, includes } = parsePlugstack(text);
  for (const plugin of listed) {
    const found = named(plugin);
    if (found && isAbsolute(plugin)) plugins.push(found);
  }
  for (const pattern of includes) for (const included of expandLastStar(pattern, dirname(file.path))) readPlugstack(included, files, plugins, depth + 1);
}

function expandLastStar(pattern: string, base: string): string[] {
  const full = isAbsolute(pattern) ? pattern : join(base, pattern);
  const dir = dirname(full);
  const leaf = full.slice(dir.length + 1);
  if (!leaf.includes('*')) return [full];
  const matcher = new RegExp(`^${leaf.replace(/[.+^${}()|[\]\\?]/g, '\\$&').replace(/\*/g, '.*')}$`);
  try {
    return readdirSync(dir)
      .filter((name) => matcher.test(name))
      .sort()
      .map((name) => join(dir, name));
  } catch {
    return [];
  }
}

function recordOwners(path: string, owners: Record<string, PathOwner>) {
  for (let at = path; ; at = posix.dirname(at)) {
    if (!owners[at]) {
      const stat = lstatSync(at, { throwIfNoEntry: false });
      if (stat) owners[at] = { uid: stat.uid, mode: stat.mode };
    }
    if (at === '/') return;
  }
}
