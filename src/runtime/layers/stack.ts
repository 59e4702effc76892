// Shared layer mounts and the job overlay on top of them. Both functions run under the node lock,
// so outside it a layer is in use exactly when some job overlay in mountinfo lists it.

import { lstatSync, mkdirSync, readdirSync, realpathSync, rmdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { firstLine, nodeError, StrataError, userError } from '../../errors.js';
import { blockDeviceName, listLoopDevices, loopBackingFileOfDevice } from '../../host/loop.js';
import { isMounted, mountsUnder, readMountinfo, type MountEntry, lowerIdsOf } from '../../host/mountinfo.js';
import { tryMount, tryMountImage, unmountAll } from '../../host/mounts.js';
import { idmappedClone } from '../../host/job-mounts.js';
import type { Compression, LayerCachePolicy } from '../../config/types.js';
import { simulatedLoopShortage } from '../../test-switches.js';
import { checkLayerFile, probeLayerRead } from './file.js';
import type { RuntimePaths } from '../paths.js';
import type { Step } from '../job/plan.js';

type RootfsStep = Extract<Step, { op: 'rootfs' }>;

/**
 * Layer mounts this process made or found holding their own layer file, by mount point: the
 * device number seen then. A layer mount's backing file only changes if it is unmounted and something
 * else is mounted there on the same device, which only root can do; strata forgets the mount
 * point when it releases a layer itself. The node agent thus reads each layer's loop device in
 * sysfs once, not on every job start (~25 µs per layer: 1 ms of a 40-layer prolog).
 */
const verifiedLayerMounts = new Map<string, number>();

/**
 * Mount the layers this job needs that no one has mounted yet, then the job's overlay. Under the
 * node lock, so it asks stat(2) rather than mountinfo what is mounted (mountinfo grows with every
 * job on the node, and the lock serializes every job start). `overlayMounted`: this call mounted
 * the overlay with the plan's options; an overlay found there already (a prolog run again after
 * being killed) is for `checkOverlay` to judge, after the lock.
 */
export async function mountRootfs(step: RootfsStep): Promise<{ mountedLayers: number; overlayMounted: boolean }> {
  let overlayMounted = false;
  const layerDirDevice = deviceOf(step.layerDir);
  const toMount = new Map<string, RootfsStep['layers'][number]>();
  // erofs layers mounted on their file: mountinfo names the file, read once for all of them.
  let erofsSources: Map<string, string> | undefined;
  const erofsSource = (mountPoint: string) => {
    erofsSources ??= new Map(readMountinfo(step.layerDir).filter((entry) => entry.fsType === 'erofs').map((entry) => [entry.mountPoint, entry.source]));
    return erofsSources.get(mountPoint);
  };
  for (const layer of step.layers) {
    // The plan lists each layer once; never queue two mounts on one mount point regardless.
    if (toMount.has(layer.mountPoint)) continue;
    const device = deviceOf(layer.mountPoint);
    if (device !== undefined && device !== layerDirDevice) {
      if (verifiedLayerMounts.get(layer.mountPoint) === device) continue;
      // Something is mounted there: it must be this layer file, through a loop device or (erofs)
      // backed by the file itself.
      const backing = loopBackingFileOfDevice(device) ?? (layer.erofs ? erofsSource(layer.mountPoint) : undefined);
      if (backing !== layer.file && backing !== realpathOrSelf(layer.file)) {
        throw nodeError('E_LAYER_CLASH', `${layer.mountPoint} holds ${backing ?? blockDeviceName(device) ?? 'another filesystem'}, not ${layer.file}`, {
          hint: 'run `strata node gc` on this node',
        });
      }
      verifiedLayerMounts.set(layer.mountPoint, device);
      continue;
    }
    checkLayerFile(layer.file, layer.digest);
    mkdirSync(layer.mountPoint, { recursive: true, mode: 0o755 });
    // A planted symlink at the mount point would send the mount elsewhere: never follow one.
    if (!lstatSync(layer.mountPoint).isDirectory()) throw nodeError('E_RUNTIME_TAMPERED', `${layer.mountPoint} is not a directory`, { hint: 'something other than strata wrote into the runtime dir; remove it and check the node' });
    const queuedInDir = [...toMount.values()].filter((queued) => dirname(queued.file) === dirname(layer.file)).length;
    const shortage = simulatedLoopShortage(layer.file, layer.mountPoint, () => queuedInDir + listLoopDevices().filter((loop) => dirname(loop.backingFile) === dirname(layer.file)).length);
    if (shortage) throw layerMountError(layer, shortage);
    toMount.set(layer.mountPoint, layer);
  }
  // Sent at once (a loop device with autoclear each, reusing one already bound to the file; erofs
  // backed by its file where the kernel can): the executor attaches and mounts them in order
  // while the node lock is held, and this process waits once instead of once per layer. The first
  // failure, in layer order, is the job's; the layers mounted meanwhile are released like any
  // unused layer.
  const layers = [...toMount.values()];
  const results = await Promise.all(layers.map((layer) => tryMountImage({ file: layer.file, target: layer.mountPoint, type: layer.erofs ? 'erofs' : 'squashfs', options: ['nosuid', 'nodev'], directIo: step.directIo })));
  for (const [index, result] of results.entries()) {
    if (result.exitCode !== 0) throw layerMountError(layers[index], result.stderr);
    // Mounted from its own file just now: the next job start finds it checked.
    const device = deviceOf(layers[index].mountPoint);
    if (device !== undefined && device !== layerDirDevice) verifiedLayerMounts.set(layers[index].mountPoint, device);
  }
  if (step.idmap) await mountIdmappedLayers(step, step.idmap, readMountinfo());

  // Mounted already (a prolog run again after being killed) when it is another filesystem than
  // the job's directory.
  if (deviceOf(step.target) === deviceOf(dirname(step.target))) {
    const options = step.options.split(/(?<!\\),/);
    const result = await tryMount({ type: 'overlay', source: 'overlay', target: step.target, options, flags: ['--make-private'], cwd: step.idmap?.dir ?? step.layerDir });
    if (result.exitCode !== 0) {
      throw nodeError('E_OVERLAY', `cannot mount the job overlay: ${firstLine(result.stderr)}`, { detail: `$ ${result.command}\n${result.stderr}` });
    }
    overlayMounted = true;
  }
  return { mountedLayers: layers.length, overlayMounted };
}

/**
 * Whether an overlay found mounted at the job's rootfs stacks the job's layers. (The kernel would
 * truncate an over-long option string instead of failing: the plan refuses options longer than a
 * page, so an overlay this prolog mounted itself needs no look.) After the node lock: the overlay,
 * once mounted, keeps its layers in use.
 */
export function checkOverlay(step: RootfsStep): void {
  const overlay = readMountinfo().findLast((entry) => entry.mountPoint === step.target && entry.fsType === 'overlay');
  const lowers = overlay ? lowerIdsOf(overlay) : [];
  if (lowers.length !== step.layers.length) {
    throw nodeError('E_OVERLAY', `job overlay at ${step.target} has ${lowers.length} layers, expected ${step.layers.length}`, {
      detail: overlay?.superOptions,
    });
  }
}

/** st_dev of `path` (not following a final link), or undefined when it does not exist. */
function deviceOf(path: string): number | undefined {
  return lstatSync(path, { throwIfNoEntry: false })?.dev;
}

/**
 * Remap-root: an idmapped clone of each layer mount under the job's directory, same names (so
 * the overlay's lowerdir still names the layers it uses), made by root, reachable by root only.
 */
async function mountIdmappedLayers(step: RootfsStep, idmap: NonNullable<RootfsStep['idmap']>, table: MountEntry[]): Promise<void> {
  mkdirSync(idmap.dir, { recursive: true, mode: 0o700 });
  if (!lstatSync(idmap.dir).isDirectory()) throw nodeError('E_RUNTIME_TAMPERED', `${idmap.dir} is not a directory`, { hint: 'something other than strata wrote into the runtime dir; remove it and check the node' });
  for (const layer of step.layers) {
    const target = join(idmap.dir, layer.id);
    if (isMounted(table, target)) continue;
    mkdirSync(target, { recursive: true, mode: 0o755 });
    const reply = await idmappedClone(layer.mountPoint, target, idmap.uid, idmap.gid);
    if (!reply.ok) {
      // A kernel that refuses idmapped squashfs mounts or idmapped overlay layers: the job cannot
      // have what it asked for here, and the node is otherwise fine (no drain).
      throw userError('E_NO_USERNS', `--container-remap-root: this node cannot show the image's files as yours (idmapped mount: ${reply.message})`, {
        hint: 'drop --container-remap-root, or ask your admin for a kernel with idmapped squashfs mounts (Linux 6.18 has them)',
      });
    }
  }
}

/**
 * Every layer mount that no job overlay lists goes (policy `release`), and so does every empty
 * layer mount point. Judged from mountinfo alone, so it also cleans up after a lost journal or a
 * prolog killed between a layer mount and its overlay. Call under the node lock.
 */
export async function releaseUnusedLayers(runtime: RuntimePaths, policy: LayerCachePolicy): Promise<void> {
  const table = readMountinfo(runtime.runtimeDir);
  const inUse = layersInUse(table, runtime.jobsDir);
  let names: string[];
  try {
    names = readdirSync(runtime.layerDir);
  } catch {
    return;
  }
  const unused = names.filter((id) => !inUse.has(id)).map((id) => join(runtime.layerDir, id));
  for (const mountPoint of unused) verifiedLayerMounts.delete(mountPoint);
  if (policy === 'release') await unmountAll(unused.filter((mountPoint) => isMounted(table, mountPoint)));
  for (const mountPoint of unused) {
    try {
      rmdirSync(mountPoint);
    } catch {
      // Not empty or already gone: left for `strata node gc` to report.
    }
  }
}

/** Layer ids listed by job overlays currently mounted under the jobs directory. */
export function layersInUse(table: MountEntry[], jobsDir: string): Set<string> {
  const ids = new Set<string>();
  for (const entry of mountsUnder(table, jobsDir)) {
    if (entry.fsType === 'overlay') for (const id of lowerIdsOf(entry)) ids.add(id);
  }
  return ids;
}


/**
 * A kernel without erofs on a site whose imports write erofs (`import.compression: none`, the
 * default): then the node cannot start nearly any image, and failing job after job would make it
 * a black hole. The node's error instead: Slurm drains it with the fix and requeues the job.
 * (Where erofs is a user's own choice, the job's error stays, and the node serves everyone else.)
 */
export function siteLayerFormatError(error: unknown, compression: Compression): unknown {
  if (!(error instanceof StrataError) || error.code !== 'E_NO_EROFS' || compression !== 'none') return error;
  return nodeError('E_NO_EROFS', "this node's kernel cannot mount erofs, the layer format this site's imports write (import.compression: none)", {
    hint: 'load it (modprobe erofs) or boot a kernel with CONFIG_EROFS_FS, then resume the node; `strata doctor` checks it',
    detail: error.detail,
  });
}

/** Why a layer did not mount, as the job's error or the node's. Exported for its tests. */
export function layerMountError(layer: Pick<RootfsStep['layers'][number], 'file' | 'digest' | 'erofs'>, stderr: string) {
  const { file, digest } = layer;
  const why = firstLine(stderr);
  // A kernel without erofs: the node serves every other image, so this image's jobs fail (no drain).
  if (layer.erofs && /\(ENODEV\)|unknown filesystem type/i.test(stderr)) {
    return userError('E_NO_EROFS', `this node's kernel cannot mount erofs layers, and layer ${digest} of this image is one (imported with compression none)`, {
      hint: 'ask your admin to load erofs on the nodes (modprobe erofs; `strata doctor` checks it), or use the image imported with --compression zstd',
      detail: `mount ${file}: ${stderr}`,
    });
  }
  if (/loop device|no free loop|Could not find any loop device/i.test(stderr)) {
    return nodeError('E_NO_LOOP', `no loop device available for ${file}: ${why}`, {
      hint: 'raise max_loop (modprobe loop max_loop=N) or check /dev/loop-control; `strata node status` shows who holds them',
    });
  }
  // A layer file the kernel will not mount is a damaged image, not a broken node — unless the
  // store cannot even be read (I/O errors, filesystem gone): that is the node's problem.
  probeLayerRead(file);
  return userError('E_IMAGE_BROKEN', `layer ${digest} of this image cannot be mounted`, {
    hint: 'the image is damaged; ask your admin to run `strata verify` and re-import it',
    detail: `mount ${file}: ${stderr}`,
  });
}

// util-linux records the canonical path of a loop's backing file.
const realpathOrSelf = (path: string) => {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
};
