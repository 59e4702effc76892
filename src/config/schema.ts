// The on-disk configuration schema (/etc/strata/strata.yaml), as data. This table is the single
// source for validation (validate.ts), defaults, the example file (etc/strata.yaml) and the
// reference (docs/configuration.md); both files are generated from it by scripts/gen-config-doc.mjs.
//
// Keys are snake_case on disk and nest as YAML mappings: `upper.max_size` is written
//   upper:
//     max_size: 16G
// `mounts[].source` is the `source` field of each item of the `mounts` list. The matching field of
// the effective Config (types.ts) is the camelCase form of each segment (`upper.maxSize`).
// Long (over ~300 lines): it is a table, one entry per configuration key.

import type { Compression, LayerCachePolicy, LogLevel, PytorchEnv, RecheckTags, SlurmClientPath, UpperBacking } from './types.js';

export type SettingType =
  /** An absolute path (normalised: no trailing slash, no `.`/`..` segments). */
  | 'path'
  /** Bytes: an integer, or a number with a K/M/G/T suffix (binary). */
  | 'size'
  /** One of `allowed`. */
  | 'enum'
  /** true/false (yes/no, 1/0 also accepted). */
  | 'boolean'
  /** A whole number, at least `min`. */
  | 'integer'
  /** Seconds: a number, or a number with s/m/h/d (`90s`, `12h`, `7d`). */
  | 'duration'
  /** A list of mappings whose fields are the `KEY[].field` settings. */
  | 'list'
  /** A list of absolute paths (each normalised like a `path`). */
  | 'paths'
  /** A list of fully qualified CDI device names (`vendor.com/class=name`). */
  | 'devices';

export type DefaultValue = string | boolean | readonly string[];

export interface Setting {
  /** Dotted on-disk key; fields of list items are written `list[].field`. */
  readonly key: string;
  readonly type: SettingType;
  /** The default as written on disk; absent when the key is required or derived (`defaultFrom`). */
  readonly default?: DefaultValue;
  /** The default is the value of this sibling field (list items only). */
  readonly defaultFrom?: string;
  /** The key must be present (list items only). */
  readonly required?: boolean;
  /** Allowed values of an `enum`. */
  readonly allowed?: readonly string[];
  /** Smallest accepted `size` or `integer`, on-disk notation. */
  readonly min?: string;
  /** A `path` may also be the empty string, meaning "none". */
  readonly emptyAllowed?: boolean;
  /** A `path` must not contain these characters (they break overlayfs mount option strings). */
  readonly forbiddenChars?: string;
  /** One sentence: what the setting does. */
  readonly description: string;
  /** One line: why the default is what it is (only where it is not obvious). */
  readonly why?: string;
  /** Value used in the commented example of a list item in etc/strata.yaml. */
  readonly example?: string | boolean;
}

// Every member of a string union, checked at compile time in both directions.
const allOf =
  <T extends string>() =>
  <const A extends readonly T[]>(values: A & ([T] extends [A[number]] ? unknown : never)): A =>
    values;

export const UPPER_BACKINGS = allOf<UpperBacking>()(['tmpfs', 'disk']);
export const LAYER_CACHE_POLICIES = allOf<LayerCachePolicy>()(['release', 'keep']);
export const LOG_LEVELS = allOf<LogLevel>()(['error', 'warn', 'info', 'debug']);
export const COMPRESSIONS = allOf<Compression>()(['zstd', 'lz4hc', 'lz4', 'gzip', 'xz', 'none']);
export const RECHECK_TAGS = allOf<RecheckTags>()(['never', 'always']);
export const PYTORCH_ENVS = allOf<PytorchEnv>()(['off', 'pytorch', 'all']);
export const SLURM_CLIENT_PATHS = allOf<SlurmClientPath>()(['first', 'last']);

/** Where strata looks for its configuration unless STRATA_CONFIG names another file. */
export const DEFAULT_CONFIG_PATH = '/etc/strata/strata.yaml';
/** The environment variable naming the configuration file. */
export const CONFIG_ENV = 'STRATA_CONFIG';
/** Origin of a configuration that comes from no file. */
export const BUILTIN_ORIGIN = 'built-in defaults';

/** Container paths no site mount may cover. */
export const RESERVED_TARGETS: readonly string[] = ['/', '/proc', '/sys', '/dev'];

export const SETTINGS: readonly Setting[] = [
  {
    key: 'store.path',
    type: 'path',
    default: '/var/lib/strata/store',
    description:
      'Directory holding the image store (layer files, manifests, tags); every node must see it at the same path.',
    why: 'The default is an embedded node-local store for machines without a shared filesystem; on a cluster, point it at a directory on the shared filesystem.',
  },
  {
    key: 'store.gc_grace',
    type: 'duration',
    default: '7d',
    description: '`strata gc` keeps an image that lost its last tag (and its layers) for this long, so queued jobs pinned to it can still start.',
    why: 'Jobs are pinned to a manifest digest at submit time and may wait in the queue for days; set it above the longest queue wait plus run time.',
  },
  {
    key: 'runtime_dir',
    type: 'path',
    default: '/run/strata',
    forbiddenChars: ',:',
    description:
      'Node-local directory (tmpfs) for job journals, layer mount points and container root filesystems.',
    why: 'Node-local tmpfs, never the shared filesystem; a short path keeps overlayfs mount options within one page.',
  },
  {
    key: 'upper.backing',
    type: 'enum',
    allowed: UPPER_BACKINGS,
    default: 'tmpfs',
    description:
      "Where each job's writable upper layer lives: `tmpfs` (memory, capped at the job's size) or `disk` (a directory under `upper.disk_path`, with no cap: the sizes a job asks for and `upper.default_size` are not enforced, only `upper.max_size` still refuses larger requests, and a job that asks for a size is told so in its output).",
    why: 'tmpfs gives every job a hard size cap, and one umount removes everything the job wrote.',
  },
  {
    key: 'upper.disk_path',
    type: 'path',
    default: '/var/tmp/strata',
    forbiddenChars: ',:',
    description: 'Node-local directory for job upper layers when `upper.backing` is `disk`.',
  },
  {
    key: 'upper.default_size',
    type: 'size',
    default: '1G',
    min: '1M',
    description: 'Size of the upper layer of a job that does not ask for a size (a cap with `upper.backing: tmpfs` only).',
  },
  {
    key: 'upper.max_size',
    type: 'size',
    default: '16G',
    min: '1M',
    description: 'Largest upper layer a job may ask for; larger requests are refused.',
  },
  {
    key: 'layers.cache',
    type: 'enum',
    allowed: LAYER_CACHE_POLICIES,
    default: 'release',
    description:
      'When the last job using a layer on a node ends: `release` unmounts it and frees its loop device, `keep` leaves it mounted for the next job.',
    why: 'With `release`, an idle node returns to a clean state: no mounts or loop devices left behind.',
  },
  {
    key: 'layers.direct_io',
    type: 'boolean',
    default: false,
    description:
      "Attach layer files to their loop devices with direct I/O (4096-byte sectors), so that a layer's data is cached once (decompressed, by squashfs) instead of twice; needs the mount helper (`npm run build` with a C compiler).",
    why: 'Measured (docs/performance.md): with direct I/O, cold start-up changed within the noise and a cold 1 GiB read was 1.1-1.4x slower; a site whose page cache holds layers twice (Lustre client cache plus squashfs) may turn it on.',
  },
  {
    key: 'mounts',
    type: 'list',
    default: [],
    description: 'Bind mounts added to every container (scratch filesystems, site software, ...).',
  },
  {
    key: 'mounts[].source',
    type: 'path',
    required: true,
    example: '/scratch',
    description: 'Host path to mount.',
  },
  {
    key: 'mounts[].target',
    type: 'path',
    defaultFrom: 'source',
    example: '/scratch',
    description: 'Path inside the container; not `/`, `/proc`, `/sys`, `/dev` or under `runtime_dir`, and each target once.',
  },
  {
    key: 'mounts[].readonly',
    type: 'boolean',
    default: true,
    example: false,
    description: 'Mount read-only.',
  },
  {
    key: 'mounts[].optional',
    type: 'boolean',
    default: false,
    example: true,
    description: 'Skip the mount (instead of failing the job) when the source does not exist on the node.',
  },
  {
    key: 'container.hosts',
    type: 'boolean',
    default: true,
    description: "Bind the node's `/etc/hosts` read-only into every container, so the job's node names resolve inside.",
  },
  {
    key: 'container.resolv_conf',
    type: 'boolean',
    default: true,
    description: "Bind the node's `/etc/resolv.conf` read-only into every container (the node's DNS servers and search domains).",
  },
  {
    key: 'container.hostname',
    type: 'boolean',
    default: true,
    description: "Give every container an `/etc/hostname` holding the node's host name (read-only).",
  },
  {
    key: 'container.localtime',
    type: 'boolean',
    default: true,
    description: "Bind the node's `/etc/localtime` read-only into every container, so times print in the node's zone.",
  },
  {
    key: 'container.tmp_size',
    type: 'size',
    default: '1G',
    min: '1M',
    description:
      "Size of each container's own `/tmp`: a tmpfs per job, writable also under `--container-readonly`, not counted against the writable layer, gone when the job ends.",
    why: 'tmpfs takes memory only for what is written; MPI and many tools need a writable /tmp, and a cap keeps one job from filling the node\'s memory.',
  },
  {
    key: 'container.save_time_limit',
    type: 'duration',
    default: '90s',
    description:
      "How long the epilog may spend on a job's `--container-save` on each node; a save that takes longer is stopped, nothing is written, and the job's output says so. Keep it below Slurm's `PrologEpilogTimeout` (or `EpilogTimeout`), less a few seconds for the teardown.",
    why: "slurmd drains a node whose epilog outlives that timeout: a user's large save must cost them their save, never the node (90 s fits the 120 s timeout docs/slurm.md recommends).",
  },
  {
    key: 'container.mount_home',
    type: 'boolean',
    default: true,
    description:
      "Bind the job user's home directory into every container at its own path, unless the job says `--no-container-mount-home` (Pyxis's option; `--container-mount-home` turns it on where this is false).",
    why: 'Users expect their dotfiles, keys and scripts inside, as with Pyxis and enroot\'s default.',
  },
  {
    key: 'container.entrypoint',
    type: 'boolean',
    default: false,
    description:
      "Run the image's ENTRYPOINT before each task's command, unless the job says `--no-container-entrypoint` (`--container-entrypoint` turns it on where this is false); its output is shown only with `--container-entrypoint-log`.",
    why: "Pyxis's default: HPC images' entrypoints often print banners or start services a batch task does not want.",
  },
  {
    key: 'container.remap_root',
    type: 'boolean',
    default: false,
    description:
      'Run every task as uid 0 in a user namespace mapped to the job user, unless the job says `--no-container-remap-root` (`--container-remap-root` asks for it where this is false). Needs unprivileged user namespaces on the nodes.',
    why: "Pyxis's default: tasks run as the user, as on the host.",
  },
  {
    key: 'container.pytorch_env',
    type: 'enum',
    default: 'off',
    allowed: PYTORCH_ENVS,
    description:
      "Give every task the PyTorch distributed variables enroot's optional Slurm hook sets (`MASTER_ADDR` = the step's first node, `MASTER_PORT` = 61000 + job id mod 4536, `WORLD_SIZE`, `RANK`, `LOCAL_RANK` from the task's Slurm values): `pytorch` for images whose environment sets `PYTORCH_VERSION` (as enroot's hook), `all` for every image. A variable the image sets, or one listed in `--container-env`, is left alone.",
    why: 'Off by default, as enroot ships the hook: `RANK` and `WORLD_SIZE` in every job would surprise programs that are not PyTorch.',
  },
  {
    key: 'slurm_client.enabled',
    type: 'boolean',
    default: true,
    description:
      "Make the node's Slurm commands (`srun`, `sbatch`, `scontrol`, `squeue`, `scancel`, ...) usable inside Slurm container jobs, also in images without Slurm or with another glibc: the commands, their libraries and loader are bound read-only under `/.strata/slurm/host`, run through small wrappers in `/.strata/slurm/bin`, and slurm.conf's directory, the plugin directory, the SPANK plugins and the munge socket's directory are bound read-only at their own paths.",
    why: 'A batch script that calls `srun` is the most common Slurm job (pyxis issue 31); everything bound is the node\'s own, read-only, and used only by the wrappers.',
  },
  {
    key: 'slurm_client.path',
    type: 'enum',
    default: 'first',
    allowed: SLURM_CLIENT_PATHS,
    description:
      "Where `/.strata/slurm/bin` goes in the container's `PATH`: `first` (the node's commands win over an image's own Slurm) or `last` (an image's own `srun` wins, for sites whose images carry a matching Slurm).",
    why: "The node's client always matches the cluster's Slurm; an image's seldom does.",
  },
  {
    key: 'slurm_client.bin_dirs',
    type: 'paths',
    default: ['/usr/local/bin', '/usr/bin'],
    description: "Where the node's Slurm commands are looked for, first match wins (e.g. add `/opt/slurm/bin`).",
  },
  {
    key: 'slurm_client.library_dirs',
    type: 'paths',
    default: [],
    description:
      "Library directories the Slurm commands need besides their own run path, the plugin directory and the dynamic loader's directory (a munge or PMIx built into `/opt`, say); bound read-only and searched first.",
  },
  {
    key: 'log.file',
    type: 'path',
    default: '/var/log/strata/strata.log',
    emptyAllowed: true,
    description: 'Log file for the prolog, epilog and CLI; an empty string (`""`) disables it.',
  },
  {
    key: 'log.level',
    type: 'enum',
    allowed: LOG_LEVELS,
    default: 'info',
    description: 'Least severe level written to the log file.',
  },
  {
    key: 'log.syslog',
    type: 'boolean',
    default: false,
    description:
      'Also send every log line to the local syslog socket (`/dev/log`, read by journald or rsyslog), facility daemon, tag `strata`.',
    why: 'Off by default: the log file alone works everywhere; sites that collect node logs centrally turn it on.',
  },
  {
    key: 'metrics.textfile',
    type: 'path',
    default: '',
    emptyAllowed: true,
    description:
      "Prometheus textfile (node exporter's textfile collector, e.g. `/var/lib/prometheus/node-exporter/strata.prom`) updated after every prolog and epilog; `\"\"` disables it.",
  },
  {
    key: 'import.compression',
    type: 'enum',
    allowed: COMPRESSIONS,
    default: 'none',
    description: 'Layer format written by `strata import`: `none` writes uncompressed erofs layers (mounted backed by their file, Linux 6.12+, else through a loop device); `zstd`, `lz4hc`, `lz4`, `gzip`, `xz` write squashfs layers compressed so.',
    why: "Measured (docs/performance.md, cold start-up inside the container against the same tree on local disk): only uncompressed erofs starts library-heavy programs as fast as local disk (`import numpy` 1.04-1.12x, an MPI hello 0.99-1.04x), while the compressed formats pay a block decompression per page fault (squashfs zstd 1.71x / 1.20x; lz4hc, lz4 and compressed erofs 1.35-1.48x for numpy in the same run, lz4hc 1.17-1.21x in shorter ones; gzip slower still) and even uncompressed squashfs through a loop device is 1.44x; it is also written ~5x faster (6 s against 34 s for a 588 MiB image). Its cost is store size: ~3.1x zstd's (590 MiB against 187; lz4hc 242, lz4 291). Choose `zstd` where store space matters more than start-up, or where node kernels lack erofs (RHEL 8; `strata doctor` checks); `lz4hc` is the fastest-starting compressed format, but squashfs-tools' unsquashfs 4.5 refuses tar2sqfs's lz4 files.",
  },
  {
    key: 'import.parallel_layers',
    type: 'integer',
    default: '3',
    min: '1',
    description: 'How many layers `strata import` downloads and converts at the same time.',
    why: "Each conversion runs strata's erofs writer, or tar2sqfs with its own compressor threads; a few in parallel hide download latency without oversubscribing a login node.",
  },
  {
    key: 'import.lustre_stripe_count',
    type: 'integer',
    default: '0',
    min: '-1',
    description: 'On Lustre (when `lfs` is installed), new layer files are striped over this many OSTs (`lfs setstripe -c`; -1 = all); 0 keeps the directory default. Ignored on other filesystems.',
    why: 'Layer files are read by every node at job start: wide striping spreads that load, but only a site knows its OST count and file sizes.',
  },
  {
    key: 'import.flatten_above',
    type: 'integer',
    default: '64',
    min: '0',
    description: 'Images with more layers than this are imported as one layer (as with `--flatten`); 0 never flattens automatically.',
    why: 'Every layer costs a mount per node (and a loop device, for squashfs); past a few dozen layers a single layer starts jobs faster and loses little sharing.',
  },
  {
    key: 'import.user_imports',
    type: 'boolean',
    default: false,
    example: true,
    description:
      'Let users who cannot write the store import images into their own namespace of tags (`~USER/NAME:TAG`). The store is still written only by its owner: strata runs the writing half as the owner through sudo (see docs/install.md for the one sudoers line), and reads the source as the user.',
    why: 'Off by default: it lets every user add data to the shared store; a site turns it on after installing the sudoers rule (and sets import.user_quota).',
  },
  {
    key: 'import.user_quota',
    type: 'size',
    default: '0',
    example: '50G',
    description:
      "Most a user's own images (`~USER/`) may take in the store: the layer files they use that no site image uses. An import that would go over it is refused before anything is downloaded (by the source's layer sizes, where it gives them); 0 means no limit.",
    why: 'Users share the store with the site; a limit per user keeps one user from filling the shared filesystem, and layers shared with site images cost them nothing.',
  },  {
    key: 'import.on_demand',
    type: 'boolean',
    default: false,
    example: true,
    description:
      "Import a registry image a job names that is not in the store yet (`--container-image=nvcr.io#nvidia/pytorch:24.05-py3`, Pyxis's syntax) at submit time, as the submitting user, into their own `~USER/` namespace (within import.user_quota), then pin it by digest. Needs import.user_imports. Off: such a job is refused, with a message saying how to ask for the image.",
    why: 'Off by default, like import.user_imports which it builds on: it lets any job add data to the shared store. A site replacing Pyxis turns it on so that job scripts keep working unchanged.',
  },
  {
    key: 'import.recheck_tags',
    type: 'enum',
    allowed: RECHECK_TAGS,
    default: 'never',
    description:
      "Whether submitting a job asks the registry again about a registry image's tag that is already in the store: `never` uses the stored image (a user asks for a fresh look with STRATA_IMPORT_RECHECK=1 at submit); `always` compares the registry's manifest digest at every submit and imports again when the tag has moved (only with import.on_demand).",
    why: 'never: a submit then needs no registry (no rate limits for job arrays, no failure when the registry is down), and every job of a series runs the same image until someone asks; see docs/decisions.md.',
  },
  {
    key: 'devices.spec_dirs',
    type: 'paths',
    default: ['/etc/cdi', '/var/run/cdi'],
    description:
      'Directories holding the node\'s CDI specs (`*.json`, `*.yaml`), e.g. written by `nvidia-ctk cdi generate`; a device defined in a later directory wins over one of the same name in an earlier directory.',
    why: 'The CDI standard locations, in the priority order podman, containerd and CRI-O use.',
  },
  {
    key: 'devices.default_requests',
    type: 'devices',
    default: [],
    description:
      'CDI devices every container job gets on the nodes whose specs offer them (e.g. `[example.com/ib=all]`); on other nodes they are left out.',
  },
  {
    key: 'devices.auto_all',
    type: 'boolean',
    default: false,
    description:
      'A job whose image asks for GPUs (NVIDIA_VISIBLE_DEVICES, as CUDA images do) but to which the scheduler allocated none gets all of the node\'s GPUs (`nvidia.com/gpu=all`).',
    why: 'Off by default: a job gets the GPUs it was allocated; sites that allocate whole nodes without GPU GRES turn it on.',
  },
  {
    key: 'devices.allow_unknown_hooks',
    type: 'boolean',
    default: false,
    description:
      'Changes no outcome today: strata runs no hook program, so a job given a device whose CDI spec has a hook other than the NVIDIA ones strata carries out itself (create-symlinks, update-ldcache, enable-cuda-compat, disable-device-node-modification, chmod) fails with a node-side `E_CDI_HOOK` either way. Specs with such hooks load, and `strata doctor` lists their devices, either way too. `true` only moves the refusal from gathering the job\'s device edits to planning its steps. Reserved for running such hooks, which strata does not do.',
    why: 'Off by default: a hook is a program run as root next to an untrusted image; strata carries out NVIDIA\'s hooks itself instead of running them.',
  },
];

/** "what is allowed" for a setting: the second half of every error message about it. */
export function allowedText(setting: Setting): string {
  switch (setting.type) {
    case 'path':
      return setting.emptyAllowed
        ? 'use an absolute path, or "" for none'
        : setting.forbiddenChars
          ? `use an absolute path without ${[...setting.forbiddenChars].map((c) => `"${c}"`).join(' or ')}`
          : 'use an absolute path';
    case 'size':
      return 'use a number of bytes or a size like 512M, 4G';
    case 'enum':
      return `use one of ${(setting.allowed ?? []).join(', ')}`;
    case 'boolean':
      return 'use true or false (yes/no and 1/0 also work)';
    case 'integer':
      return `use a whole number${setting.min !== undefined ? ` of at least ${setting.min}` : ''}`;
    case 'duration':
      return 'use a number of seconds or a duration like 90s, 30m, 12h, 7d';
    case 'paths':
      return 'use a list of absolute paths';
    case 'devices':
      return 'use a list of CDI device names like vendor.com/class=name';
    case 'list':
      return `use a list of mappings with ${fieldsOf(setting.key)
        .map((s) => leafName(s.key))
        .join(', ')}`;
  }
}

/** The last segment of a key: `upper.max_size` -> `max_size`, `mounts[].source` -> `source`. */
export const leafName = (key: string): string => key.slice(key.lastIndexOf('.') + 1).replace('[]', '');

/** The settings that are fields of the items of list `key` (e.g. `mounts`). */
export const fieldsOf = (key: string): Setting[] => SETTINGS.filter((s) => s.key.startsWith(`${key}[].`));

/** `default_size` -> `defaultSize`: the effective Config's name for an on-disk key segment. */
export const camelCase = (segment: string): string => segment.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());

/** The default of a setting as human text (docs, messages). */
export function defaultText(setting: Setting): string {
  if (setting.required) return '(required)';
  if (setting.defaultFrom) return `same as \`${setting.defaultFrom}\``;
  const value = setting.default;
  if (Array.isArray(value)) return `[${value.join(', ')}]`;
  if (value === '') return '""';
  return String(value);
}
