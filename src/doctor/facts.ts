// What `strata doctor` looks at, as plain data. gather.ts collects it from the machine; checks.ts
// judges it without touching anything, so every verdict can be tested from a hand-written Facts.

import type { Config } from '../config/types.js';
import type { OverlayProbe } from '../host/kernel-probe.js';
import type { DeviceFacts } from './cdi-facts.js';
import type { ElfInfo } from './elf.js';
import type { PbsHook } from '../scheduler/pbs-mom.js';

export interface FileFacts {
  path: string;
  exists: boolean;
  /** Why it could not be looked at, when it exists but stat/read failed (or timed out). */
  error?: string;
  isDirectory?: boolean;
  uid?: number;
  gid?: number;
  /** Permission bits (mode & 0o7777). */
  mode?: number;
  /** Whether root may execute it (any x bit set on a regular file). */
  executable?: boolean;
  /** The first bytes mention strata (for scheduler prolog/epilog scripts and wrappers). */
  mentionsStrata?: boolean;
}

export interface FsFacts {
  /** The path looked at (the configured one, or its nearest existing parent). */
  path: string;
  /** statfs f_type. */
  type?: number;
  /** Bytes available to unprivileged users. */
  freeBytes?: number;
  error?: string;
}

export interface PlugstackEntry {
  /** The file and line it was found on. */
  file: string;
  line: number;
  required: boolean;
  plugin: string;
  args: Record<string, string>;
}

/** A plugstack line that loads strata's plugin: a strata*.so, or any plugin given `strata=`. */
export const isStrataPlugin = (entry: PlugstackEntry) => /strata[^/]*\.so$/.test(entry.plugin.slice(entry.plugin.lastIndexOf('/') + 1)) || 'strata' in entry.args;

export interface SlurmFacts {
  confPath: string;
  /** slurm.conf could be read (when it was named by SLURM_CONF but cannot be, the rest is empty). */
  readable: boolean;
  /** slurm.conf's settings, lower-case keys (install-slurm's parseSlurmConf). */
  settings: Record<string, string>;
  prolog?: FileFacts;
  epilog?: FileFacts;
  plugstackPath: string;
  plugstackReadable: boolean;
  /** The plugstack line loading strata's plugin, if any (includes followed). */
  plugin?: PlugstackEntry;
  /** Plugin lines loaded after strata's (includes followed). */
  pluginsAfter?: PlugstackEntry[];
  pluginFile?: FileFacts;
  pluginElf?: ElfInfo | { error: string };
  /** `slurmd -V` (else `sinfo -V`) here, e.g. "24.11.5"; undefined when neither answers. */
  version?: string;
}

export interface PbsFacts {
  home: string;
  /** The MoM hooks PBS installed here whose name contains "strata" (mom_priv/hooks/*.HK). */
  hooks: PbsHook[];
  /** container_image's flags in the MoM's resourcedef; undefined when it is not defined. */
  resourceFlags?: string;
}

export interface Facts {
  nodeVersion: string;
  /** Running as root (the kernel probe and the scheduler's view need it). */
  root: boolean;
  config: { origin: string; errors: string[]; effective: Config };
  kernel: {
    release: string;
    /** Filesystem types in /proc/filesystems (loaded drivers). */
    filesystems: string[];
    /** Modules that exist for the running kernel but may not be loaded yet (loop, squashfs, erofs, overlay). */
    modules: string[];
    loopControl: boolean;
    /** /sys/module/loop/parameters/max_loop (0: devices are created on demand). */
    maxLoop?: number;
    /** /dev/loopN device nodes present. */
    loopNodes: number;
    /** Loop devices bound to a file. */
    loopsBound: number;
    overlay: OverlayProbe | { skipped: string };
    userns: { maxUserNamespaces?: number; unprivilegedClone?: number; apparmorRestrict?: number };
  };
  store: FileFacts & { layers?: FileFacts; fs?: FsFacts };
  runtime: FsFacts & { configured: string };
  upper: { fs?: FsFacts; memAvailableBytes?: number };
  slurm?: SlurmFacts;
  pbs?: PbsFacts;
  /** CDI devices and GPUs (absent: not looked at). */
  devices?: DeviceFacts;
}
