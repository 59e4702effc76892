// The effective configuration, after validation and defaults. What is on disk is described by
// schema.ts; this is what the rest of strata reads.

export type UpperBacking = 'tmpfs' | 'disk';
export type LayerCachePolicy = 'release' | 'keep';
export type LogLevel = 'error' | 'warn' | 'info' | 'debug';
export type Compression = 'zstd' | 'lz4hc' | 'lz4' | 'gzip' | 'xz' | 'none';
export type RecheckTags = 'never' | 'always';
export type PytorchEnv = 'off' | 'pytorch' | 'all';
export type SlurmClientPath = 'first' | 'last';

export interface SiteMount {
  /** Host path. */
  source: string;
  /** Path inside the container; defaults to `source`. */
  target: string;
  readonly: boolean;
  /** Skip (instead of failing the job) when the source does not exist on this node. */
  optional: boolean;
}

export interface Config {
  /** Where this config came from (a path, or "built-in defaults"). */
  origin: string;
  store: {
    /** Shared-filesystem directory holding layers, manifests and tags. */
    path: string;
    /** Seconds `strata gc` keeps an untagged image. */
    gcGrace: number;
  };
  /** Node-local directory (tmpfs) for job state, layer mount points and rootfs. */
  runtimeDir: string;
  upper: {
    backing: UpperBacking;
    /** Directory on node-local disk for `backing: disk`. */
    diskPath: string;
    /** Bytes. */
    defaultSize: number;
    /** Bytes; a job asking for more is refused. */
    maxSize: number;
  };
  layers: {
    /** On the last job's exit, unmount a layer (`release`) or keep it mounted for the next job (`keep`). */
    cache: LayerCachePolicy;
    /** Attach layer files with loop direct I/O (4096-byte sectors). */
    directIo: boolean;
  };
  /** Site bind mounts added to every container. */
  mounts: SiteMount[];
  /** What every container gets from the node (src/runtime/job/environment.ts). */
  container: {
    hosts: boolean;
    resolvConf: boolean;
    hostname: boolean;
    localtime: boolean;
    /** Bytes of each job's own /tmp (tmpfs). */
    tmpSize: number;
    /** Seconds the epilog may spend on --container-save. */
    saveTimeLimit: number;
    /** Site defaults of Pyxis's flag pairs (a job's option wins). */
    mountHome: boolean;
    entrypoint: boolean;
    remapRoot: boolean;
    /** PyTorch distributed variables per task (spank/pytorch_env.c). */
    pytorchEnv: PytorchEnv;
  };
  /** The node's Slurm client inside container jobs (src/runtime/slurm-client/). */
  slurmClient: {
    enabled: boolean;
    /** `/.strata/slurm/bin` before (`first`) or after (`last`) the image's PATH. */
    path: SlurmClientPath;
    binDirs: string[];
    libraryDirs: string[];
  };
  log: {
    /** Log file; empty string means no file. */
    file: string;
    level: LogLevel;
    /** Also log to the local syslog socket (/dev/log: journald, rsyslog). */
    syslog: boolean;
  };
  metrics: {
    /** Prometheus textfile updated after each prolog/epilog; empty string means none. */
    textfile: string;
  };
  import: {
    compression: Compression;
    /** Layers downloaded and converted at once. */
    parallelLayers: number;
    /** Flatten images with more layers than this; 0 = never automatically. */
    flattenAbove: number;
    /** `lfs setstripe -c` for new layer files on Lustre; 0 = directory default. */
    lustreStripeCount: number;
    /** Users without write access import into `~USER/` through sudo to the store owner. */
    userImports: boolean;
    /** Bytes a user's own images may use in the store; 0 = no limit. */
    userQuota: number;
    /** Registry images missing from the store are imported at submit, as the user, into `~USER/`. */
    onDemand: boolean;
    /** Ask the registry again about a tag already in the store at submit. */
    recheckTags: RecheckTags;
  };
  /** CDI devices (GPUs, ...): src/runtime/devices/. */
  devices: {
    /** Spec directories, lowest priority first. */
    specDirs: string[];
    /** Fully qualified device names every container job gets where offered. */
    defaultRequests: string[];
    /** A CUDA image in a job without allocated GPUs gets all GPUs. */
    autoAll: boolean;
    /** Run CDI hooks strata does not implement natively (as root). */
    allowUnknownHooks: boolean;
  };

}
