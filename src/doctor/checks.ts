// The verdicts of `strata doctor`: pure functions from Facts (gather.ts) to one Check each. A
// `fail` means a job on this node would fail or the node would drain; a `warn` means something an
// admin should look at that does not stop jobs. Every non-ok check says what to do about it.

import { PLUGSTACK_SNIPPET } from '../scheduler/slurm-conf.js';
import { checkPrologFlags } from './prolog-flags.js';
import { BUILTIN_ORIGIN, DEFAULT_CONFIG_PATH } from '../config/schema.js';
import { formatSize } from '../config/validate.js';
import { MOM_EVENTS, RESOURCE } from '../scheduler/pbs-hooks.js';
import { checkDevices } from './cdi-checks.js';
import { checkErofs, checkSquashfs } from './layer-format-checks.js';
import { fail, ok, warn, type Check } from './check.js';
import { isStrataPlugin, type Facts, type FileFacts, type FsFacts, type PbsFacts } from './facts.js';

export type { Check, CheckStatus } from './check.js';

/** The oldest Node.js strata runs on (package.json engines). */
export const MIN_NODE_MAJOR = 20;
/** Fewer free loop devices than this is worth a warning (one per distinct layer mounted). */
export const FEW_LOOPS = 16;

// statfs f_type values (linux/magic.h and the filesystems' own headers).
const FS_TYPES: Record<number, string> = {
  0x01021994: 'tmpfs',
  0x858458f6: 'ramfs',
  0xef53: 'ext4',
  0x58465342: 'xfs',
  0x9123683e: 'btrfs',
  0x794c7630: 'overlay',
  0x6969: 'nfs',
  0x0bd00bd0: 'lustre',
  0x47504653: 'gpfs',
  0x19830326: 'beegfs',
  0xff534d42: 'cifs',
  0xfe534d42: 'smb2',
  0x00c36400: 'ceph',
  0x65735546: 'fuse',
};
const MEMORY_FS = new Set(['tmpfs', 'ramfs']);
const NETWORK_FS = new Set(['nfs', 'lustre', 'gpfs', 'beegfs', 'cifs', 'smb2', 'ceph', 'fuse']);
export const fsName = (type: number | undefined) => (type === undefined ? 'unknown' : FS_TYPES[type] ?? `0x${type.toString(16)}`);

export function runChecks(facts: Facts): Check[] {
  return [
    checkNode(facts),
    checkConfig(facts),
    checkLoopDriver(facts),
    checkSquashfs(facts),
    checkErofs(facts),
    checkOverlay(facts),
    checkUserNamespaces(facts),
    checkLoopDevices(facts),
    checkStore(facts),
    checkRuntimeDir(facts),
    checkUpper(facts),
    ...checkScheduler(facts),
    ...checkDevices(facts.devices),
  ];
}

/** Fit for jobs: no check failed (warnings do not count). */
export const isFit = (checks: readonly Check[]) => checks.every((check) => check.status !== 'fail');

export function checkNode(facts: Facts): Check {
  const major = Number(facts.nodeVersion.split('.')[0]);
  return major >= MIN_NODE_MAJOR
    ? ok('node', `Node.js ${facts.nodeVersion}`)
    : fail('node', `Node.js ${facts.nodeVersion} is older than ${MIN_NODE_MAJOR}`, `install Node.js ${MIN_NODE_MAJOR} or later as /usr/bin/node (the entry points' #!)`);
}

export function checkConfig({ config }: Facts): Check {
  if (config.errors.length) {
    const more = config.errors.length > 1 ? ` (and ${config.errors.length - 1} more)` : '';
    return fail('config', `${config.origin}: ${config.errors[0].split('\n').slice(-1)[0].trim()}${more}`, 'run `strata config check` for every problem, and fix them');
  }
  if (config.origin === BUILTIN_ORIGIN) {
    return warn('config', 'no configuration file: using the built-in defaults (a node-local store)', `write ${DEFAULT_CONFIG_PATH} with store.path on the shared filesystem (see docs/install.md)`);
  }
  return ok('config', `${config.origin} is valid`);
}

export function checkLoopDriver({ kernel }: Facts): Check {
  if (kernel.loopControl || kernel.modules.includes('loop')) return ok('kernel.loop', 'loop device driver present');
  return fail('kernel.loop', 'no loop device driver (/dev/loop-control missing, no loop module)', 'run `modprobe loop` (and add loop to /etc/modules-load.d/)');
}

export function checkOverlay({ kernel }: Facts): Check {
  const probe = kernel.overlay;
  if ('skipped' in probe) {
    const present = kernel.filesystems.includes('overlay') || kernel.modules.includes('overlay');
    if (!present) return fail('kernel.overlay', 'the kernel has no overlayfs', 'run `modprobe overlay`, or use a kernel built with CONFIG_OVERLAY_FS');
    return warn('kernel.overlay', `overlayfs present, test mount not made (${probe.skipped})`, 'run `strata doctor` as root to test a real overlay mount with volatile');
  }
  if (probe.overlay && probe.volatile) return ok('kernel.overlay', 'test overlay mount with volatile worked');
  if (probe.overlay) {
    return fail('kernel.overlay', `overlay mounts, but not with volatile (${probe.error ?? 'refused'}); kernel ${kernel.release}`, 'use Linux 5.10 or later: strata mounts job uppers with volatile');
  }
  return fail('kernel.overlay', `test overlay mount failed: ${probe.error ?? 'refused'}`, 'run `modprobe overlay`; check that no security module (SELinux, AppArmor) denies overlay mounts to root');
}

export function checkUserNamespaces({ kernel: { userns } }: Facts): Check {
  const name = 'kernel.userns';
  const why = 'needed only by `strata exec` (PBS, or sites without the SPANK plugin)';
  if (userns.maxUserNamespaces === 0) return warn(name, `user namespaces disabled (user.max_user_namespaces=0); ${why}`, 'sysctl -w user.max_user_namespaces=15000 (and in /etc/sysctl.d/)');
  if (userns.unprivilegedClone === 0) return warn(name, `unprivileged user namespaces disabled (kernel.unprivileged_userns_clone=0); ${why}`, 'sysctl -w kernel.unprivileged_userns_clone=1 (and in /etc/sysctl.d/)');
  if (userns.apparmorRestrict === 1) return warn(name, `AppArmor restricts unprivileged user namespaces; ${why}`, 'sysctl -w kernel.apparmor_restrict_unprivileged_userns=0, or an AppArmor profile allowing userns for strata');
  return ok(name, 'unprivileged user namespaces allowed');
}

export function checkLoopDevices({ kernel }: Facts): Check {
  const name = 'loop.devices';
  const raise = 'raise max_loop: `options loop max_loop=1024` in /etc/modprobe.d/loop.conf (or loop.max_loop=1024 on the kernel command line), then reload loop or reboot';
  if (!kernel.loopControl) {
    const free = kernel.loopNodes - kernel.loopsBound;
    if (free <= 0) return fail(name, `no free loop device (${kernel.loopsBound} of ${kernel.loopNodes} in use) and no /dev/loop-control to make more`, `run \`modprobe loop\`; ${raise}`);
    if (free < FEW_LOOPS) return warn(name, `only ${free} free loop devices and no /dev/loop-control`, raise);
    return ok(name, `${free} free loop devices`);
  }
  if (kernel.maxLoop && kernel.maxLoop > 0) {
    const free = kernel.maxLoop - kernel.loopsBound;
    if (free <= 0) return fail(name, `all ${kernel.maxLoop} loop devices (max_loop) are in use`, `find leaks with \`losetup -a\`, or ${raise}`);
    if (free < FEW_LOOPS) return warn(name, `only ${free} of ${kernel.maxLoop} loop devices (max_loop) free; each distinct layer mounted takes one`, raise);
    return ok(name, `${free} of ${kernel.maxLoop} loop devices free`);
  }
  return ok(name, `${kernel.loopsBound} loop devices in use; more are created on demand (max_loop=0)`);
}

export function checkStore({ store, config }: Facts): Check {
  const name = 'store';
  const where = `store.path in ${config.origin === BUILTIN_ORIGIN ? DEFAULT_CONFIG_PATH : config.origin}`;
  if (!store.exists) return fail(name, `${store.path} does not exist`, `mount the shared filesystem on this node, or set ${where}`);
  if (store.error) return fail(name, `${store.path} cannot be read: ${store.error}`, 'check that the shared filesystem is mounted and answers, and that root may read the store');
  if (!store.isDirectory) return fail(name, `${store.path} is not a directory`, `set ${where} to the store directory`);
  const writable = [store, store.layers].find((file): file is FileFacts => !!file?.exists && ((file.mode ?? 0) & 0o002) !== 0);
  if (writable) {
    return fail(name, `${writable.path} is world-writable (mode ${octal(writable.mode)}): any user could plant or replace image layers`, `chmod o-w ${writable.path}`);
  }
  const owner = `owner ${store.uid}:${store.gid}, mode ${octal(store.mode)}`;
  if (!store.layers?.exists) return warn(name, `${store.path} has no images yet (${owner})`, 'import one: strata import dir:/path/to/rootfs --tag NAME:TAG');
  if (store.layers.error) return fail(name, `${store.layers.path} cannot be read: ${store.layers.error}`, 'let root read and search the store directories');
  return ok(name, `${store.path} reachable (${fsName(store.fs?.type)}, ${owner})`);
}

export function checkRuntimeDir({ runtime }: Facts): Check {
  const name = 'runtime_dir';
  const at = runtime.path === runtime.configured ? runtime.configured : `${runtime.configured} (would be created on ${runtime.path})`;
  if (runtime.error) return fail(name, `${at}: ${runtime.error}`, 'make the parent directory of runtime_dir exist and be readable');
  const type = fsName(runtime.type);
  if (MEMORY_FS.has(type)) return ok(name, `${at} is on ${type}`);
  if (NETWORK_FS.has(type)) return fail(name, `${at} is on ${type}, a shared filesystem: job journals and locks must be node-local`, 'set runtime_dir to a directory under /run (tmpfs)');
  return warn(name, `${at} is on ${type}, not tmpfs: after a crash or reboot stale job state stays behind`, 'set runtime_dir to a directory under /run (tmpfs)');
}

export function checkUpper(facts: Facts): Check {
  const name = 'upper';
  const { upper } = facts.config.effective;
  const size = formatSize(upper.defaultSize);
  if (upper.backing === 'tmpfs') {
    const available = facts.upper.memAvailableBytes;
    if (available !== undefined && available < upper.defaultSize) {
      return warn(name, `tmpfs uppers: a job's default ${size} is more than the ${formatSize(roundMiB(available))} of memory available`, 'lower upper.default_size, or use upper.backing: disk');
    }
    return ok(name, `tmpfs uppers (default ${size}, max ${formatSize(upper.maxSize)})${available === undefined ? '' : `, ${formatSize(roundMiB(available))} memory available`}`);
  }
  const fs: FsFacts | undefined = facts.upper.fs;
  if (!fs || fs.error) return fail(name, `upper.disk_path ${upper.diskPath}: ${fs?.error ?? 'not looked at'}`, 'create upper.disk_path on a node-local disk');
  const type = fsName(fs.type);
  if (NETWORK_FS.has(type)) return fail(name, `upper.disk_path ${upper.diskPath} is on ${type}, a shared filesystem`, 'put upper.disk_path on a node-local disk');
  if (fs.freeBytes !== undefined && fs.freeBytes < upper.defaultSize) {
    return fail(name, `upper.disk_path ${upper.diskPath} has ${formatSize(roundMiB(fs.freeBytes))} free, less than one job's default ${size}`, `free space on ${fs.path}, or lower upper.default_size`);
  }
  return ok(name, `disk uppers in ${upper.diskPath} (${type}, ${formatSize(roundMiB(fs.freeBytes ?? 0))} free)`);
}

export function checkScheduler(facts: Facts): Check[] {
  const checks: Check[] = [];
  if (facts.slurm) checks.push(...checkSlurm(facts));
  if (facts.pbs) checks.push(checkPbsHook(facts.pbs), checkPbsResource(facts.pbs));
  if (!checks.length) {
    checks.push(warn('scheduler', 'no slurm.conf (/etc/slurm/slurm.conf, $SLURM_CONF) or /etc/pbs.conf found', 'set SLURM_CONF when slurm.conf is elsewhere; jobs need a scheduler prolog/epilog calling strata'));
  }
  return checks;
}

function checkSlurm(facts: Facts): Check[] {
  const slurm = facts.slurm!;
  if (!slurm.readable) {
    return [fail('slurm.conf', `${slurm.confPath} (named by SLURM_CONF) cannot be read`, 'point SLURM_CONF at the cluster\'s slurm.conf')];
  }
  const checks: Check[] = [];
  for (const [key, file] of [['Prolog', slurm.prolog], ['Epilog', slurm.epilog]] as const) {
    const name = `slurm.${key.toLowerCase()}`;
    // The C front-end (no Node for jobs without a container); install-slurm falls back to the .js
    // entry point where no C compiler was available.
    const wanted = `${key}=/usr/local/lib/strata/${key.toLowerCase()}/slurm`;
    if (!file) checks.push(fail(name, `${slurm.confPath} sets no ${key}`, `add ${wanted} to slurm.conf on every node (strata install-slurm prints the lines)`));
    else if (!file.exists) checks.push(fail(name, `${key}=${file.path} does not exist`, 'run `strata install-slurm` on this node, or fix the path in slurm.conf'));
    else if (file.error || !file.executable) checks.push(fail(name, `${key}=${file.path} is not executable${file.error ? ` (${file.error})` : ''}`, `chmod 755 ${file.path}`));
    else if (!file.mentionsStrata) checks.push(warn(name, `${key}=${file.path} does not look like strata's ${key.toLowerCase()}`, `make it run ${wanted.split('=')[1]} (or strata ${key.toLowerCase()})`));
    else checks.push(ok(name, `${key}=${file.path}`));
  }
  checks.push(checkPrologFlags(slurm.settings.prologflags, slurm.version));
  checks.push(checkSpankPlugin(facts));
  return checks;
}

export function checkSpankPlugin(facts: Facts): Check {
  const name = 'slurm.plugin';
  const slurm = facts.slurm!;
  if (!slurm.plugstackReadable) return fail(name, `cannot read ${slurm.plugstackPath}`, `create plugstack.conf with \`include /etc/slurm/plugstack.conf.d/*.conf\` (strata install-slurm writes ${PLUGSTACK_SNIPPET} there)`);
  const entry = slurm.plugin;
  if (!entry) return fail(name, `no strata.so line in ${slurm.plugstackPath} (includes followed)`, 'add `include /etc/slurm/plugstack.conf.d/*.conf` to plugstack.conf and run `strata install-slurm`');
  const file = slurm.pluginFile;
  const where = `${entry.file}:${entry.line}`;
  if (!file?.exists) return fail(name, `${entry.plugin} (${where}) does not exist`, 'run `strata install-slurm`, or fix the path in plugstack.conf');
  const elf = slurm.pluginElf;
  if (file.error || !elf) return fail(name, `${entry.plugin} cannot be read${file.error ? `: ${file.error}` : ''}`, `let root read ${entry.plugin}`);
  if ('error' in elf) return fail(name, `${entry.plugin} is ${elf.error}`, 'rebuild it with `make -C spank` and run `strata install-slurm`');
  if (elf.type !== 3) return fail(name, `${entry.plugin} is not a shared object`, 'rebuild it with `make -C spank` and run `strata install-slurm`');
  if (!elf.exports.includes('slurm_spank_init')) return fail(name, `${entry.plugin} does not export slurm_spank_init: not a SPANK plugin`, 'rebuild it with `make -C spank` and run `strata install-slurm`');
  // Slurm loads a plugin only if it was built against the same major.minor release: after an
  // upgrade (e.g. 22.05 -> 24.11) a required plugin built for the old one makes every sbatch, srun
  // and salloc fail with "Incompatible plugin version".
  const built = elf.pluginVersion === undefined ? undefined : `${elf.pluginVersion >> 16}.${String((elf.pluginVersion >> 8) & 0xff).padStart(2, '0')}`;
  const running = /^(\d+\.\d+)\./.exec(slurm.version ?? '')?.[1];
  if (built && running && built !== running) {
    return fail(name, `${entry.plugin} was built for Slurm ${built}, this node runs Slurm ${slurm.version}: Slurm refuses to load it ("Incompatible plugin version")`, 'rebuild it against this Slurm\'s headers (Debian: libslurm-dev) with `make -C spank` and run `strata install-slurm`');
  }
  const runtimeDir = entry.args.runtime_dir ?? '/run/strata';
  if (runtimeDir !== facts.config.effective.runtimeDir) {
    return fail(name, `${where}: the plugin looks in runtime_dir=${runtimeDir}, strata uses ${facts.config.effective.runtimeDir}`, `set runtime_dir=${facts.config.effective.runtimeDir} on the plugstack line`);
  }
  // strata enters the image (chroot) in task_init_privileged, as root: a plugin loaded after it
  // would run its own privileged task hook inside the image, where the image's files are the
  // libraries and configuration it finds.
  const after = slurm.pluginsAfter ?? [];
  const again = after.find(isStrataPlugin);
  if (again) {
    return fail(name, `strata's plugin is loaded twice, at ${where} and ${again.file}:${again.line}: Slurm fails every step`, `remove one of them (an older strata install-slurm wrote strata.conf; it now writes ${PLUGSTACK_SNIPPET})`);
  }
  if (after.length) {
    return fail(name, `${after.map((plugin) => `${plugin.plugin} (${plugin.file}:${plugin.line})`).join(', ')} load after strata's plugin and would run as root inside container images`, `list strata's line last in plugstack.conf (strata install-slurm writes it as plugstack.conf.d/${PLUGSTACK_SNIPPET}, after the others; a file that sorts later needs renaming)`);
  }
  if (!entry.required) return warn(name, `${where} loads ${entry.plugin} as optional: if it fails to load, container jobs run on the host`, 'write `required` instead of `optional`');
  return ok(name, `${entry.plugin} (${where}) exports slurm_spank_init`);
}

const octal = (mode: number | undefined) => (mode ?? 0).toString(8).padStart(4, '0');
const roundMiB = (bytes: number) => Math.max(1, Math.floor(bytes / 2 ** 20)) * 2 ** 20;

/** The MoM hook PBS installed from `strata install-pbs`'s qmgr commands: there, enabled, complete. */
export function checkPbsHook(pbs: PbsFacts): Check {
  const name = 'pbs.hooks';
  const dir = `${pbs.home}/mom_priv/hooks`;
  const setUp = 'run the qmgr commands `strata install-pbs` prints, on the PBS server';
  const hook = pbs.hooks.find((candidate) => candidate.events.includes('execjob_begin'));
  if (!hook) return fail(name, `no strata hook for execjob_begin in ${dir}${pbs.hooks.length ? ` (found ${pbs.hooks.map((h) => h.name).join(', ')})` : ''}`, setUp);
  if (!hook.enabled) return fail(name, `hook ${hook.name} is disabled`, `qmgr -c 'set hook ${hook.name} enabled = true'`);
  if (!hook.hasScript) return fail(name, `hook ${hook.name} has no script (${dir}/${hook.name}.PY): it was never imported`, setUp);
  const missing = MOM_EVENTS.filter((event) => !hook.events.includes(event));
  const events = `qmgr -c 'set hook ${hook.name} event = "${MOM_EVENTS.join(',')}"'`;
  if (missing.includes('execjob_end')) return fail(name, `hook ${hook.name} does not run at execjob_end: containers would never be removed`, events);
  if (missing.length) return warn(name, `hook ${hook.name} does not run at ${missing.join(', ')}${missing.includes('execjob_launch') ? ': a job whose container could not be set up would not be told why' : ''}`, events);
  if (hook.failAction !== 'offline_vnodes') {
    return warn(name, `hook ${hook.name} has fail_action ${hook.failAction}: a broken node would keep taking jobs`, `qmgr -c 'set hook ${hook.name} fail_action = offline_vnodes'`);
  }
  return ok(name, `hook ${hook.name} imported and enabled in ${dir} (${hook.events.join(', ')})`);
}

/** `-l container_image` exists, and reaches MoM hooks (flag m). */
export function checkPbsResource(pbs: PbsFacts): Check {
  const name = 'pbs.resource';
  const resource = RESOURCE.name;
  if (pbs.resourceFlags === undefined) {
    return warn(name, `PBS knows no resource ${resource} (${pbs.home}/mom_priv/hooks/resourcedef): qsub -l ${resource}=... is refused`, `qmgr -c 'create resource ${resource} type=string, flag=${RESOURCE.flags}'`);
  }
  if (!pbs.resourceFlags.includes(RESOURCE.flags)) {
    // The hook reads the image from Variable_List, so jobs still work; the resource's value does not reach MoM hooks.
    return warn(name, `resource ${resource} lacks flag ${RESOURCE.flags}, so PBS does not send it to MoM hooks`, `qmgr -c 'set resource ${resource} flag = ${RESOURCE.flags}'`);
  }
  return ok(name, `resource ${resource} reaches MoM hooks (flag=${pbs.resourceFlags})`);
}
