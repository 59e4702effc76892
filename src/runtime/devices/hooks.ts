// CDI hooks as typed actions. A CDI hook is a program the runtime runs as root with the container's
// state; nvidia-ctk's specs name six of them (nvidia-cdi-hook or `nvidia-ctk hook`). strata does
// not run them: it reads their arguments and does the same work itself, through file descriptors
// inside the rootfs and never executing anything from the image (running ldconfig as root over an
// untrusted rootfs is how CVE-2024-0132/0133 happened). Any other hook is "external": refused unless
// the site allows it. Pure: no I/O.

import { basename, posix } from 'node:path';
import type { CdiHook } from './spec-types.js';

export interface SymlinkAction {
  /** What the link points to, verbatim (relative or absolute inside the container). */
  target: string;
  /** The link's absolute path inside the container; an existing file there is replaced. */
  link: string;
}

export type HookAction =
  | { kind: 'create-symlinks'; links: SymlinkAction[] }
  /** Add these container directories to the dynamic linker's search path (ld.so.conf.d + cache). */
  | { kind: 'update-ldcache'; folders: string[] }
  /** Prefer the image's CUDA forward-compat libraries under `compatRoot` when newer than the host driver. */
  | { kind: 'enable-cuda-compat'; compatRoot: string; hostDriverVersion?: string; hostCudaVersion?: string }
  /** Make /proc/driver/nvidia/params say ModifyDeviceFiles: 0 inside the container. */
  | { kind: 'disable-device-node-modification' }
  | { kind: 'chmod'; mode: number; paths: string[] }
  /** A hook strata knows and deliberately does not carry out (reason says why it is harmless). */
  | { kind: 'skipped'; name: string; reason: string }
  /** Not one of NVIDIA's: never run; refused when edits are gathered, or (devices.allow_unknown_hooks) when planned. */
  | { kind: 'external'; hookName: string; path: string; args: string[]; env: string[]; timeout?: number };

/** The NVIDIA hooks strata carries out itself. */
export const NATIVE_HOOKS = ['create-symlinks', 'update-ldcache', 'enable-cuda-compat', 'disable-device-node-modification', 'chmod'] as const;
const SKIPPED: Record<string, string> = {
  // Sets EGL/Vulkan GPU visibility through a driver application profile: graphics only.
  'update-application-profile': 'only affects EGL/Vulkan GPU selection',
};
const DEFAULT_COMPAT_ROOT = '/usr/local/cuda/compat';

type Flags = Record<string, string[]>;
type FlagKinds = Record<string, 'value' | 'list'>;

/** urfave/cli style flags (`--name value`, `--name=value`, `-name value`); a problem for anything else. */
function parseFlags(args: readonly string[], kinds: FlagKinds): Flags | string {
  const flags: Flags = {};
  for (let index = 0; index < args.length; index++) {
    const arg = args[index];
    const match = /^--?([a-z][a-z0-9-]*)(?:=(.*))?$/s.exec(arg);
    if (!match) return `unexpected argument "${arg}"`;
    const [, name, inline] = match;
    const kind = kinds[name];
    if (!kind) return `unknown option --${name}`;
    const value = inline ?? args[++index];
    if (value === undefined) return `--${name} needs a value`;
    if (kind === 'value' && flags[name]) return `--${name} given twice`;
    (flags[name] ??= []).push(value);
  }
  return flags;
}

const isContainerPath = (path: string) => path.startsWith('/') && !path.includes('\0') && !path.split('/').includes('..');
const canonical = (path: string) => posix.normalize(path).replace(/(.)\/$/, '$1');

function containerPaths(values: readonly string[] = [], what: string): string[] | string {
  const bad = values.find((value) => !isContainerPath(value));
  return bad === undefined ? values.map(canonical) : `${what} "${bad}" is not an absolute container path without ".."`;
}

/** The action for one NVIDIA subcommand and its arguments, or the problem with them. */
function nvidiaAction(command: string, args: readonly string[]): HookAction | string | undefined {
  if (command in SKIPPED) return { kind: 'skipped', name: command, reason: SKIPPED[command] };
  switch (command) {
    case 'create-symlinks': {
      const flags = parseFlags(args, { link: 'list' });
      if (typeof flags === 'string') return flags;
      const links: SymlinkAction[] = [];
      for (const value of flags.link ?? []) {
        const at = value.indexOf('::');
        const target = value.slice(0, at);
        const link = value.slice(at + 2);
        if (at <= 0 || !target || target.includes('\0') || !isContainerPath(link)) return `--link "${value}" is not TARGET::/absolute/link`;
        links.push({ target, link: canonical(link) });
      }
      return { kind: 'create-symlinks', links };
    }
    case 'update-ldcache': {
      // --ldconfig-path names the host's ldconfig for nvidia-cdi-hook to run; strata runs none.
      const flags = parseFlags(args, { folder: 'list', 'ldconfig-path': 'value' });
      if (typeof flags === 'string') return flags;
      const folders = containerPaths(flags.folder, 'folder');
      return typeof folders === 'string' ? folders : { kind: 'update-ldcache', folders };
    }
    case 'enable-cuda-compat': {
      const flags = parseFlags(args, { 'host-driver-version': 'value', 'host-cuda-version': 'value', 'cuda-compat-container-root': 'value' });
      if (typeof flags === 'string') return flags;
      const [driver] = flags['host-driver-version'] ?? [];
      const [cuda] = flags['host-cuda-version'] ?? [];
      for (const version of [driver, cuda]) if (version !== undefined && !/^\d+(\.\d+)*$/.test(version)) return `"${version}" is not a version`;
      const root = containerPaths(flags['cuda-compat-container-root'] ?? [DEFAULT_COMPAT_ROOT], 'compat root');
      if (typeof root === 'string') return root;
      return { kind: 'enable-cuda-compat', compatRoot: root[0], ...(driver ? { hostDriverVersion: driver } : {}), ...(cuda ? { hostCudaVersion: cuda } : {}) };
    }
    case 'disable-device-node-modification': {
      const flags = parseFlags(args, {});
      return typeof flags === 'string' ? flags : { kind: 'disable-device-node-modification' };
    }
    case 'chmod': {
      const flags = parseFlags(args, { mode: 'value', path: 'list' });
      if (typeof flags === 'string') return flags;
      const [mode] = flags.mode ?? [];
      if (!mode || !/^[0-7]{1,4}$/.test(mode)) return `--mode "${mode ?? ''}" is not an octal mode`;
      const paths = containerPaths(flags.path, 'path');
      return typeof paths === 'string' ? paths : { kind: 'chmod', mode: parseInt(mode, 8), paths };
    }
  }
  // A subcommand newer than strata: not carried out natively, so it is an external hook.
  return undefined;
}

/**
 * What a CDI hook asks for: an NVIDIA hook as a typed action (or the problem with its arguments),
 * or `external` for any other program.
 */
export function classifyHook(hook: CdiHook): { action: HookAction } | { problem: string } {
  const program = basename(hook.path);
  const args = hook.args ?? [];
  // argv[0] is the program's own name; `nvidia-ctk hook SUBCOMMAND` is the older spelling.
  const rest = program === 'nvidia-cdi-hook' ? args.slice(1) : program === 'nvidia-ctk' && args[1] === 'hook' ? args.slice(2) : undefined;
  const external = { action: { kind: 'external' as const, hookName: hook.hookName, path: hook.path, args: [...args], env: [...(hook.env ?? [])], ...(hook.timeout ? { timeout: hook.timeout } : {}) } };
  if (rest === undefined || !rest[0]) return external;
  const [command, ...flags] = rest;
  const action = nvidiaAction(command, flags);
  if (action === undefined) return external;
  return typeof action === 'string' ? { problem: `${program} ${command}: ${action}` } : { action };
}
