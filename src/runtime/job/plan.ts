// The planner: job + config + image → the ordered list of steps that set the job's rootfs up.
// Pure: no I/O. The applier carries the steps out (and journals them); the teardown undoes them.

import { posix } from 'node:path';
import type { Config } from '../../config/types.js';
import { formatSize } from '../../config/validate.js';
import { userError } from '../../errors.js';
import { DEFAULT_PATH_ENV } from '../../store/image.js';
import type { ResolvedImage } from '../../store/store.js';
import { normalise, type BindRequest } from './request.js';
import { planEnvironment, type JobFilesStep, type TmpStep } from './environment.js';
import { RuntimePaths, layerId } from '../paths.js';
import { isWithin } from '../../path-within.js';
import { searchPathAdditions, type ContainerEdits } from '../devices/index.js';
import { deviceEnv, planDevices, type DeviceStep } from './devices-plan.js';
import { planSlurmClient, withSlurmPath, type SlurmClientStep } from '../slurm-client/plan.js';
import type { SlurmClientFacts } from '../../host/slurm-client.js';

export interface JobRequest {
  jobId: string;
  uid: number;
  gid: number;
  /** The user's home directory on the host (bound at the same path), if known. */
  home?: string;
  /** The job's working directory on the host (submit dir; bound at the same path), if known. */
  jobWorkDir?: string;
  /** Working directory inside the container (default: the image's WorkingDir, else /). */
  workdir?: string;
  writable: boolean;
  /** Requested upper size in bytes (default from config). */
  upperSize?: number;
  mounts: BindRequest[];
  /** CDI devices for the job (jobDevices in src/runtime/devices), if any. */
  devices?: ContainerEdits;
  /** Pyxis's flag pairs as the job gave them; undefined = the site default (config.container). */
  mountHome?: boolean;
  entrypoint?: boolean;
  remapRoot?: boolean;
  /** The node's Slurm client (Slurm jobs; host/slurm-client.ts), or why there is none. */
  slurmClient?: SlurmClientFacts | { missing: string };
}

export interface LayerMount {
  id: string;
  digest: string;
  /** The layer file in the store. */
  file: string;
  /** Where it is mounted on this node (shared by all jobs). */
  mountPoint: string;
  /** An erofs layer (import.compression: none); absent: squashfs, as in journals before erofs. */
  erofs?: true;
}

export interface EntryConfig {
  jobId: string;
  image: string;
  manifestDigest: string;
  rootfs: string;
  uid: number;
  gid: number;
  env: string[];
  /** Devices' search-path dirs (also in env), appended to whichever value wins at entry: no ld.so.cache has them. */
  devicePaths?: string[];
  workdir: string;
  entrypoint: string[];
  cmd: string[];
  user?: string;
  writable: boolean;
  /** CDI additionalGIDs, recorded only: no process gets them (docs/decisions.md); absent when none. */
  additionalGids?: number[];
  /** The CDI devices the container has, fully qualified; absent when none. */
  devices?: string[];
  /** Run `entrypoint` before each task's command (the job's choice, else the site's); a step's option wins. */
  runEntrypoint: boolean;
  /** Tasks run as uid 0 in a user namespace mapped to the job user (idem). */
  remapRoot: boolean;
  /** Each task gets the PyTorch distributed variables (container.pytorch_env; spank/pytorch_env.c). */
  pytorchEnv?: boolean;
  /** A line the plugin prints once in the job's output (spank/task.c); an older plugin skips it. */
  notice?: string;
}

export type Step =
  | { op: 'upper-tmpfs'; target: string; sizeBytes: number; uid: number; gid: number }
  | { op: 'upper-dir'; path: string; uid: number; gid: number }
  | { op: 'mkdir'; path: string; mode: number }
  | {
      op: 'rootfs';
      target: string;
      layerDir: string;
      /** Base layer first (manifest order). */
      layers: LayerMount[];
      /** Complete overlay option string (lowerdir relative to layerDir, top layer first). */
      options: string;
      /** Attach the layer files with loop direct I/O (config `layers.direct_io`). */
      directIo?: boolean;
      /** --container-remap-root: the overlay stacks idmapped clones of the layer mounts, made in `dir`
       *  (same names), where the image's root-owned files are `uid`/`gid`'s; `options` is relative to `dir`. */
      idmap?: { uid: number; gid: number; dir: string };
    }
  /** Remap-root: a file for the image's tools in a directory of the image, if it has one (apt's sandbox user). */
  | { op: 'put-file'; rootfs: string; dir: string; name: string; content: string; uid: number; gid: number }
  /** A bind into the rootfs: source opened as the job's user, target resolved (made) inside the rootfs (host/job-mounts.ts). */
  | ({ op: 'bind'; rootfs: string } & BindRequest)
  /** The overlay mount itself becomes read-only, after the binds (which keep their own flags). */
  | { op: 'readonly'; target: string }
  | DeviceStep
  | JobFilesStep
  | TmpStep
  | SlurmClientStep
  | { op: 'entry'; path: string; entry: EntryConfig };

export interface Plan {
  jobId: string;
  jobDir: string;
  rootfs: string;
  steps: Step[];
  /** Device edits deliberately not carried out, for the admin log. */
  notes?: string[];
}

/** The kernel copies at most one page of mount options and silently truncates the rest. */
export const MOUNT_OPTIONS_MAX = 4095;
/** overlayfs: OVL_MAX_STACK. */
export const MAX_LOWER_LAYERS = 500;
/** The smallest writable layer: tmpfs reads size=0 as "unlimited", and a few pages hold nothing. */
export const MIN_UPPER_SIZE = 1024 * 1024;

export function planJob(job: JobRequest, config: Config, image: ResolvedImage): Plan {
  const runtime = new RuntimePaths(config.runtimeDir);
  const paths = runtime.job(job.jobId);
  const upperSize = job.upperSize ?? config.upper.defaultSize;
  if (upperSize > config.upper.maxSize) {
    throw userError('E_UPPER_SIZE', `requested writable space ${formatSize(upperSize)} is more than this site allows (${formatSize(config.upper.maxSize)})`, {
      hint: `ask for at most ${formatSize(config.upper.maxSize)} with --container-upper-size`,
    });
  }

  if (upperSize < MIN_UPPER_SIZE) {
    throw userError('E_UPPER_SIZE', `requested writable space ${formatSize(upperSize)} is less than the smallest strata makes (${formatSize(MIN_UPPER_SIZE)})`, {
      hint: `ask for at least ${formatSize(MIN_UPPER_SIZE)} with --container-upper-size, e.g. 512M`,
    });
  }

  const steps: Step[] = [];
  // The upper layer: tmpfs gives a hard cap and is freed by one umount; disk gives room.
  let upperRoot: string;
  if (config.upper.backing === 'tmpfs') {
    upperRoot = paths.upper;
    steps.push({ op: 'upper-tmpfs', target: upperRoot, sizeBytes: upperSize, uid: job.uid, gid: job.gid });
  } else {
    upperRoot = posix.join(config.upper.diskPath, job.jobId);
    steps.push({ op: 'upper-dir', path: upperRoot, uid: job.uid, gid: job.gid });
  }

  // A layer listed twice (identical content imported on top of itself) is kept once, at its
  // topmost place: the stack is the same, and overlayfs refuses a repeated lower (ELOOP).
  const unique = image.layers.filter((layer, index) => !image.layers.slice(index + 1).some((above) => above.digest === layer.digest));
  const layers: LayerMount[] = unique.map((layer) => ({
    id: layerId(layer.digest),
    digest: layer.digest,
    file: layer.path,
    mountPoint: runtime.layerMount(layer.digest),
    ...(layer.format === 'erofs' ? { erofs: true as const } : {}),
  }));
  const options = overlayOptions(layers, upperRoot);
  checkOverlayFits(layers.length, options, image.ref);
  steps.push({ op: 'mkdir', path: paths.rootfs, mode: 0o755 });
  const remapRoot = job.remapRoot ?? config.container.remapRoot;
  const idmap = remapRoot ? { idmap: { uid: job.uid, gid: job.gid, dir: paths.mapped } } : {};
  steps.push({ op: 'rootfs', target: paths.rootfs, layerDir: runtime.layerDir, layers, options, ...(config.layers.directIo ? { directIo: true } : {}), ...idmap });
  if (remapRoot) steps.push(APT_SANDBOX(paths.rootfs, job.uid, job.gid));
  const environment = planEnvironment(paths.dir, paths.rootfs, job.uid, job.gid, config);
  steps.push(...environment.steps);
  const slurm = job.slurmClient && config.slurmClient.enabled ? planSlurmClient(job.slurmClient, config, job.uid) : undefined;
  steps.push(...(slurm?.steps ?? []));
  // Device files go in before any other bind (see devices-plan.ts); device checks after them.
  const devices = job.devices ? planDevices(paths.rootfs, job.devices) : undefined;
  steps.push(...(devices?.early ?? []));
  // Binds first: their mount points are made in the (still writable) job layer.
  for (const bind of bindList(job, config, [...environment.binds, ...(slurm?.binds ?? [])])) steps.push({ op: 'bind', rootfs: paths.rootfs, ...bind });
  steps.push(...(devices?.late ?? []));
  if (!job.writable) steps.push({ op: 'readonly', target: paths.rootfs });

  const imageConfig = image.config.config ?? {};
  const imageEnv = imageConfig.Env?.length ? imageConfig.Env : [DEFAULT_PATH_ENV];
  const devicePaths = searchPathAdditions(devices?.env ?? []);
  steps.push({
    op: 'entry',
    path: paths.entry,
    entry: {
      jobId: job.jobId,
      image: image.ref,
      manifestDigest: image.manifestDigest,
      rootfs: paths.rootfs,
      uid: job.uid,
      gid: job.gid,
      env: deviceEnv(slurm ? withSlurmPath(imageEnv, config.slurmClient.path) : imageEnv, devices ?? { env: [] }),
      workdir: job.workdir ?? (imageConfig.WorkingDir || '/'),
      entrypoint: imageConfig.Entrypoint ?? [],
      cmd: imageConfig.Cmd ?? [],
      user: imageConfig.User || undefined,
      writable: job.writable,
      runEntrypoint: job.entrypoint ?? config.container.entrypoint,
      remapRoot,
      ...(devicePaths.length ? { devicePaths } : {}),
      ...(devices?.additionalGids.length ? { additionalGids: devices.additionalGids } : {}),
      ...(job.devices?.devices.length ? { devices: job.devices.devices } : {}),
      ...(wantsPytorchEnv(config.container.pytorchEnv, imageEnv) ? { pytorchEnv: true } : {}),
      ...(job.upperSize !== undefined && config.upper.backing === 'disk' ? { notice: uncappedNotice(job.upperSize) } : {}),
    },
  });
  const notes = [...(devices?.notes ?? []), ...(slurm?.notes ?? [])];
  return { jobId: job.jobId, jobDir: paths.dir, rootfs: paths.rootfs, steps, ...(notes.length ? { notes } : {}) };
}

/**
 * apt drops to its sandbox user `_apt` to download, which a namespace mapping one uid cannot
 * become: run it as root, as enroot's 10-aptfix hook does (a later file in the image wins).
 */
const APT_SANDBOX = (rootfs: string, uid: number, gid: number): Step => ({
  op: 'put-file',
  rootfs,
  dir: '/etc/apt/apt.conf.d',
  name: '99strata-remap-root',
  content: 'APT::Sandbox::User "root";\n',
  uid,
  gid,
});

/** `pytorch`: images that say they carry PyTorch (PYTORCH_VERSION), as enroot's hook decides. */
// A disk upper has no cap (docs/decisions.md): a job that asked for a size is told, not left to find out.
const uncappedNotice = (size: number) => `the writable space you asked for (${formatSize(size)}) is not a limit on this node: its writable layers are on local disk (upper.backing: disk), without a cap`;

export function wantsPytorchEnv(setting: Config['container']['pytorchEnv'], imageEnv: string[]): boolean {
  return setting === 'all' || (setting === 'pytorch' && imageEnv.some((item) => item.startsWith('PYTORCH_VERSION=')));
}

export function overlayOptions(layers: LayerMount[], upperRoot: string): string {
  // lowerdir lists the top layer first: the reverse of the manifest's order.
  const lower = layers.map((layer) => layer.id).reverse().join(':');
  // index/xino would be disabled anyway (squashfs has a null UUID); say so rather than rely on
  // module defaults. volatile: nothing in an ephemeral upper is worth an fsync.
  return `lowerdir=${lower},upperdir=${upperRoot}/u,workdir=${upperRoot}/w,volatile,index=off,xino=off,nosuid,nodev`;
}

function checkOverlayFits(count: number, options: string, ref: string) {
  if (count === 0) {
    throw userError('E_IMAGE_BROKEN', `image ${ref} has no layers`, { hint: 'import it again' });
  }
  if (count > MAX_LOWER_LAYERS || options.length > MOUNT_OPTIONS_MAX) {
    throw userError('E_TOO_MANY_LAYERS', `image ${ref} has ${count} layers, more than one overlay mount can stack here`, {
      hint: 'ask your admin to re-import it with `strata import --flatten`',
    });
  }
}

/** System, home, job and site binds, then the user's; parents before children. */
function bindList(job: JobRequest, config: Config, environment: BindRequest[]): BindRequest[] {
  // /sys read-only, as in every container runtime: a job has no business reconfiguring the node.
  // Trusted (opened as root): fixed host paths no user can change, which every user may enter;
  // opening them as the user would cost the executor a child process each.
  const system: BindRequest[] = ['/proc', '/sys', '/dev'].map((path) => ({
    source: path,
    target: path,
    readonly: path === '/sys',
    optional: false,
    recursive: true,
    trusted: true,
  }));
  const binds: BindRequest[] = [...system];
  const add = (bind: BindRequest) => {
    if (!binds.some((existing) => existing.target === bind.target)) binds.push(bind);
  };
  for (const site of config.mounts) add({ ...site, recursive: false });
  // After the site's: a site mount of /etc/hosts (say) wins over the node's file.
  for (const bind of environment) add(bind);
  const covered = (path: string) => binds.some((bind) => bind.source === bind.target && isWithin(path, bind.target));
  if ((job.mountHome ?? config.container.mountHome) && job.home && job.home !== '/' && !covered(job.home)) add({ source: job.home, target: job.home, readonly: false, optional: true, recursive: false });
  if (job.jobWorkDir && job.jobWorkDir !== '/' && !covered(job.jobWorkDir)) {
    add({ source: job.jobWorkDir, target: job.jobWorkDir, readonly: false, optional: true, recursive: false });
  }
  for (const user of job.mounts) {
    // The user's own mount of their home or job directory replaces the automatic one.
    const automatic = binds.findIndex(
      (existing) => existing.target === user.target && (existing.automatic || (existing.optional && (existing.target === job.home || existing.target === job.jobWorkDir))),
    );
    if (automatic >= 0) binds.splice(automatic, 1);
    if (binds.some((existing) => existing.target === user.target)) {
      throw userError('E_BAD_MOUNT', `mount target ${user.target} is already used by another mount`, { hint: 'pick another destination' });
    }
    binds.push(user);
  }
  const depth = (path: string) => normalise(path).split('/').length;
  return binds.map((bind, index) => ({ bind, index })).sort((a, b) => depth(a.bind.target) - depth(b.bind.target) || a.index - b.index).map(({ bind }) => bind);
}

