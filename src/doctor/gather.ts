// Collects the Facts `strata doctor` judges. Everything here only reads, except the overlay probe
// (src/host/kernel-probe.ts), which mounts a throw-away tmpfs+overlay and removes it again. Shared
// filesystem calls are bounded in time: a hung Lustre must give a verdict, not a hung health check.

import { execFile } from 'node:child_process';
import { constants, existsSync, readdirSync, readFileSync, statfsSync } from 'node:fs';
import { access, open, stat } from 'node:fs/promises';
import { release } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { parseSlurmConf } from '../scheduler/slurm-conf.js';
import { readConfig } from '../config/load.js';
import { defaultConfig } from '../config/validate.js';
import { asStrataError } from '../errors.js';
import { probeOverlay } from '../host/kernel-probe.js';
import { findPbsMom, resourceFlags, strataMomHooks } from '../scheduler/pbs-mom.js';
import { RESOURCE } from '../scheduler/pbs-hooks.js';
import { listLoopDevices } from '../host/loop.js';
import { gatherDeviceFacts } from './cdi-facts.js';
import { readElf } from './elf.js';
import { isStrataPlugin, type Facts, type FileFacts, type FsFacts, type PbsFacts, type PlugstackEntry, type SlurmFacts } from './facts.js';

export interface GatherOptions {
  env?: NodeJS.ProcessEnv;
  /** How long one shared-filesystem call may take (ms). */
  timeoutMs?: number;
  /** Skip the real overlay mount (unit tests of the rest). */
  probe?: boolean;
}

export async function gatherFacts(options: GatherOptions = {}): Promise<Facts> {
  const env = options.env ?? process.env;
  const timeoutMs = options.timeoutMs ?? 10_000;
  const root = process.getuid?.() === 0;

  let config: Facts['config'];
  try {
    const read = await readConfig(env);
    config = { origin: read.origin, errors: read.errors, effective: read.config ?? defaultConfig(read.origin) };
  } catch (error) {
    const origin = env.STRATA_CONFIG ?? 'configuration';
    config = { origin, errors: [asStrataError(error).summary], effective: defaultConfig(origin) };
  }
  const effective = config.effective;

  const store = await fileFacts(effective.store.path, timeoutMs);
  const storeFacts: Facts['store'] = { ...store };
  if (store.exists && store.isDirectory) {
    storeFacts.layers = await fileFacts(join(effective.store.path, 'layers'), timeoutMs);
    storeFacts.fs = fsFacts(effective.store.path);
  }

  const runtime = fsFacts(nearestExisting(effective.runtimeDir));
  let overlay: Facts['kernel']['overlay'];
  if (options.probe === false) overlay = { skipped: 'not probed' };
  else if (!root) overlay = { skipped: 'not root' };
  else {
    try {
      overlay = await probeOverlay(existsSync(effective.runtimeDir) ? effective.runtimeDir : runtime.path);
    } catch (error) {
      overlay = { overlay: false, volatile: false, error: asStrataError(error).summary };
    }
  }

  const slurm = await slurmFacts(env, timeoutMs);
  return {
    nodeVersion: process.versions.node,
    root,
    config,
    kernel: {
      release: release(),
      filesystems: readText('/proc/filesystems').split('\n').map((line) => line.trim().split(/\s+/).pop() ?? '').filter(Boolean),
      modules: ['loop', 'squashfs', 'erofs', 'overlay'].filter((name) => moduleAvailable(name)),
      loopControl: existsSync('/dev/loop-control'),
      maxLoop: numberIn('/sys/module/loop/parameters/max_loop'),
      loopNodes: listDir('/dev').filter((name) => /^loop\d+$/.test(name)).length,
      loopsBound: safe(() => listLoopDevices().length, 0),
      overlay,
      userns: {
        maxUserNamespaces: numberIn('/proc/sys/user/max_user_namespaces'),
        unprivilegedClone: numberIn('/proc/sys/kernel/unprivileged_userns_clone'),
        apparmorRestrict: numberIn('/proc/sys/kernel/apparmor_restrict_unprivileged_userns'),
      },
    },
    store: storeFacts,
    runtime: { ...runtime, configured: effective.runtimeDir },
    upper: {
      fs: effective.upper.backing === 'disk' ? fsFacts(nearestExisting(effective.upper.diskPath)) : undefined,
      memAvailableBytes: memAvailable(),
    },
    slurm,
    pbs: pbsFacts(env),
    devices: safe(() => gatherDeviceFacts(effective, { slurmConf: slurm?.readable ? slurm.confPath : undefined }), undefined),
  };
}

// ---- Slurm ----------------------------------------------------------------------------------------

async function slurmFacts(env: NodeJS.ProcessEnv, timeoutMs: number): Promise<SlurmFacts | undefined> {
  const confPath = env.SLURM_CONF ?? '/etc/slurm/slurm.conf';
  const text = readOptional(confPath);
  if (text === undefined) return env.SLURM_CONF ? { confPath, readable: false, settings: {}, plugstackPath: '', plugstackReadable: false } : undefined;
  const settings = Object.fromEntries(parseSlurmConf(text));
  const facts: SlurmFacts = {
    confPath,
    readable: true,
    settings,
    plugstackPath: settings.plugstackconfig ?? join(dirname(confPath), 'plugstack.conf'),
    plugstackReadable: false,
  };
  if (settings.prolog) facts.prolog = await fileFacts(settings.prolog, timeoutMs, true);
  if (settings.epilog) facts.epilog = await fileFacts(settings.epilog, timeoutMs, true);
  const stack = readOptional(facts.plugstackPath);
  facts.plugstackReadable = stack !== undefined;
  facts.plugin = stack === undefined ? undefined : findStrataPlugin(facts.plugstackPath, stack);
  facts.pluginsAfter = stack === undefined ? [] : pluginsAfterStrata(facts.plugstackPath, stack);
  facts.version = await slurmVersion(['slurmd', 'sinfo'], timeoutMs);
  if (facts.plugin) {
    facts.pluginFile = await fileFacts(facts.plugin.plugin, timeoutMs);
    if (facts.pluginFile.exists && !facts.pluginFile.error) {
      facts.pluginElf = safe(() => readElf(readFileSync(facts.plugin!.plugin)), { error: 'cannot read it' });
    }
  }
  return facts;
}

/** The Slurm release installed here, from the first of `commands` that answers `-V` ("slurm 24.11.5"). */
async function slurmVersion(commands: string[], timeoutMs: number): Promise<string | undefined> {
  for (const command of commands) {
    const output = await new Promise<string>((resolve) => execFile(command, ['-V'], { timeout: timeoutMs }, (error, stdout) => resolve(error ? '' : String(stdout))));
    const version = /^slurm(?:-wlm)? (\d+\.\d+\.\S+)/.exec(output)?.[1];
    if (version) return version;
  }
  return undefined;
}

/** Every plugin line of a plugstack file in the order Slurm loads them, following `include` lines. */
export function plugstackEntries(file: string, text: string, depth = 0): PlugstackEntry[] {
  const entries: PlugstackEntry[] = [];
  const lines = text.split('\n');
  for (let index = 0; index < lines.length; index++) {
    const words = lines[index].replace(/#.*/, '').trim().split(/\s+/).filter(Boolean);
    if (!words.length) continue;
    if (words[0] === 'include' && words[1] && depth < 4) {
      for (const included of expandInclude(words[1])) entries.push(...plugstackEntries(included, readText(included), depth + 1));
      continue;
    }
    if ((words[0] === 'required' || words[0] === 'optional') && words[1]) {
      const args = Object.fromEntries(words.slice(2).map((word) => [word.split('=', 1)[0], word.slice(word.indexOf('=') + 1)]));
      entries.push({ file, line: index + 1, required: words[0] === 'required', plugin: words[1], args });
    }
  }
  return entries;
}

/** The plugstack line that loads strata's plugin, following `include` lines. */
export function findStrataPlugin(file: string, text: string): PlugstackEntry | undefined {
  return plugstackEntries(file, text).find(isStrataPlugin);
}

/** Plugins Slurm loads after strata's: their task hooks would run as root inside the image. */
export function pluginsAfterStrata(file: string, text: string): PlugstackEntry[] {
  const entries = plugstackEntries(file, text);
  const strata = entries.findIndex(isStrataPlugin);
  return strata < 0 ? [] : entries.slice(strata + 1);
}

function expandInclude(pattern: string): string[] {
  const name = basename(pattern);
  if (!name.includes('*')) return [pattern];
  const re = new RegExp(`^${name.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);
  return listDir(dirname(pattern)).filter((entry) => re.test(entry)).sort().map((entry) => join(dirname(pattern), entry));
}

// ---- PBS ------------------------------------------------------------------------------------------

function pbsFacts(env: NodeJS.ProcessEnv): PbsFacts | undefined {
  const mom = findPbsMom(env);
  if (!mom) return undefined;
  return { home: mom.home, hooks: safe(() => strataMomHooks(mom), []), resourceFlags: resourceFlags(mom, RESOURCE.name) };
}

// ---- helpers --------------------------------------------------------------------------------------

const withTimeout = <T>(promise: Promise<T>, ms: number, what: string): Promise<T> =>
  Promise.race([promise, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`no answer within ${ms / 1000}s (${what})`)), ms).unref())]);

async function fileFacts(path: string, timeoutMs: number, peek = false): Promise<FileFacts> {
  try {
    const info = await withTimeout(stat(path), timeoutMs, 'stat');
    const facts: FileFacts = {
      path,
      exists: true,
      isDirectory: info.isDirectory(),
      uid: info.uid,
      gid: info.gid,
      mode: info.mode & 0o7777,
      executable: info.isFile() && (info.mode & 0o111) !== 0,
    };
    if (info.isDirectory()) await withTimeout(access(path, constants.R_OK | constants.X_OK), timeoutMs, 'access').catch((error: Error) => (facts.error = error.message));
    if (peek && info.isFile()) facts.mentionsStrata = (await withTimeout(head(path), timeoutMs, 'read')).includes('strata');
    return facts;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return { path, exists: false };
    return { path, exists: true, error: code ?? (error instanceof Error ? error.message : String(error)) };
  }
}

async function head(path: string): Promise<string> {
  const handle = await open(path, 'r');
  try {
    const buffer = Buffer.alloc(64 * 1024);
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
    return buffer.toString('latin1', 0, bytesRead);
  } finally {
    await handle.close();
  }
}

function fsFacts(path: string): FsFacts {
  try {
    const info = statfsSync(path);
    return { path, type: info.type, freeBytes: info.bavail * info.bsize };
  } catch (error) {
    return { path, error: (error as NodeJS.ErrnoException).code ?? String(error) };
  }
}

/** `path` if it exists, else the closest parent that does (what a mkdir -p would land on). */
function nearestExisting(path: string): string {
  let current = path;
  while (!existsSync(current) && dirname(current) !== current) current = dirname(current);
  return current;
}

function moduleAvailable(name: string): boolean {
  if (existsSync(`/sys/module/${name}`)) return true;
  const dir = `/lib/modules/${release()}`;
  const listed = `${readText(`${dir}/modules.dep`)}\n${readText(`${dir}/modules.builtin`)}`;
  return new RegExp(`/${name}\\.ko(\\.[a-z]+)?:?\\s`, 'm').test(listed);
}

function memAvailable(): number | undefined {
  const kb = /^MemAvailable:\s+(\d+) kB/m.exec(readText('/proc/meminfo'))?.[1];
  return kb ? Number(kb) * 1024 : undefined;
}

/** A file's text, or undefined when it cannot be read. */
function readOptional(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

const readText = (path: string) => readOptional(path) ?? '';

function numberIn(path: string): number | undefined {
  const text = readText(path).trim();
  return /^-?\d+$/.test(text) ? Number(text) : undefined;
}

const listDir = (dir: string) => safe(() => readdirSync(dir), [] as string[]);

function safe<T>(fn: () => T, fallback: T): T {
  try {
    return fn();
  } catch {
    return fallback;
  }
}
