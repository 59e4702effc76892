// The `strata` command line. Each command's code is imported only when that command runs, so the
// prolog path loads nothing it does not use.

import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { COMPRESSIONS } from '../config/schema.js';
import { renderError } from './render-error.js';

type Handler = () => Promise<number>;
let chosen: Handler | undefined;
const run = (handler: Handler) => {
  chosen = handler;
};

export async function main(args = hideBin(process.argv)): Promise<number> {
  // `strata exec ... -- CMD...`: CMD goes to the program exactly as given, never through yargs.
  const dash = args[0] === 'exec' ? args.indexOf('--') : -1;
  const argv = dash >= 0 ? args.slice(0, dash) : args;
  const execTail = dash >= 0 ? args.slice(dash + 1) : [];
  const parser = yargs(argv)
    .scriptName('strata')
    .usage('$0 <command> [options]')
    .command('import <source>', 'import an image into the store: docker://REF, oci:DIR[:REF], oci-archive:FILE[:REF], docker-archive:FILE[:NAME:TAG], dir:PATH, tar:PATH', (y) =>
      y.positional('source', { type: 'string', demandOption: true, describe: 'docker://[REGISTRY/]REPO[:TAG|@DIGEST], oci:DIR[:REF], oci-archive:FILE[:REF], docker-archive:FILE[:NAME:TAG], dir:PATH (a root filesystem tree) or tar:PATH (a layer tar)' })
        .option('tag', { type: 'string', describe: 'NAME:TAG to publish it as (docker:// and tagged archives default to their own name)' })
        .option('base', { type: 'string', describe: 'dir:/tar: only: an image in the store to put the new layer on top of' })
        .option('platform', { type: 'string', describe: 'OS/ARCH[/VARIANT] to take from a multi-platform image (default: this machine)' })
        .option('insecure', { type: 'boolean', describe: 'docker:// over plain HTTP (localhost registries always are)' })
        .option('flatten', { type: 'boolean', describe: 'store the image as one layer (automatic above import.flatten_above layers)' })
        .option('compression', { type: 'string', choices: COMPRESSIONS, describe: 'layer format of this import instead of import.compression: squashfs compressed so, or none: uncompressed erofs (fastest start-up of library-heavy programs, ~3x the size)' }),
      (a) => run(async () => (await import('./commands/import.js')).importCommand({ source: a.source!, tag: a.tag, base: a.base, platform: a.platform, insecure: a.insecure, flatten: a.flatten, compression: a.compression })))
    .command('images', 'list the images in the store', (y) => y.option('json', { type: 'boolean' }),
      (a) => run(async () => (await import('./commands/images.js')).imagesCommand({ json: a.json })))
    .command('inspect <ref>', 'show an image: layers with digests and sizes, config (JSON)', (y) =>
      y.positional('ref', { type: 'string', demandOption: true }).option('json', { type: 'boolean', default: true }),
      (a) => run(async () => (await import('./commands/images.js')).inspectCommand({ ref: a.ref! })))
    .command('resolve <ref>', 'print the manifest digest an image reference stands for (a registry image in Pyxis syntax is imported on first use where the site allows it)', (y) =>
      y.positional('ref', { type: 'string', demandOption: true, describe: 'NAME:TAG, ~/NAME:TAG, sha256:DIGEST, or [USER@][REGISTRY#]IMAGE[:TAG] / docker://...' })
        .option('recheck', { type: 'boolean', describe: 'ask the registry whether the tag moved since it was imported (also STRATA_IMPORT_RECHECK=1)' })
        .option('mounts', { type: 'string', describe: 'also check a --container-mounts list (relative sources from the current directory), before anything is imported' }),
      (a) => run(async () => (await import('./commands/resolve.js')).resolveCommand({ ref: a.ref!, recheck: a.recheck, mounts: a.mounts })))
    .command('prolog', 'set a job\'s rootfs up on this node (run by the scheduler\'s prolog)', (y) =>
      y.option('job', { type: 'string', demandOption: true })
        .option('uid', { type: 'number', demandOption: true })
        .option('gid', { type: 'number', demandOption: true })
        .option('image', { type: 'string', describe: 'image reference; no image = nothing to do' })
        .option('image-digest', { type: 'string', describe: 'digest pinned at submit time (wins over --image)' })
        .option('mounts', { type: 'string', describe: 'SRC[:DST[:ro|rw]],...' })
        .option('workdir', { type: 'string', describe: 'working directory inside the container' })
        .option('job-workdir', { type: 'string', describe: 'the job\'s working directory on the host (bound at the same path)' })
        .option('writable', { type: 'boolean', default: true, describe: 'writable rootfs (--readonly for read-only)' })
        .option('readonly', { type: 'boolean', describe: 'read-only rootfs' })
        .option('upper-size', { type: 'string', describe: 'size of the writable layer, e.g. 4G' })
        .option('devices', { type: 'string', describe: 'CDI devices, vendor.com/class=name,... (--container-devices)' })
        .option('mount-home', { type: 'boolean', describe: 'bind the user\'s home directory (--no-mount-home: do not; default: container.mount_home)' })
        .option('entrypoint', { type: 'boolean', describe: 'run the image\'s entrypoint before each task (default: container.entrypoint)' })
        .option('remap-root', { type: 'boolean', describe: 'tasks run as uid 0 in a user namespace (default: container.remap_root)' })
        .option('save', { type: 'string', describe: 'at the job\'s end, save the writable layer: a squashfs file PATH or ~/NAME:TAG (--container-save)' })
        .option('timings', { type: 'boolean', describe: 'print where the time went (stderr)' })
        .option('dry-run', { type: 'boolean', describe: 'print the mount plan (JSON) and change nothing' }),
      (a) => run(async () => (await import('./commands/prolog.js')).prologCommand({
        job: a.job, uid: a.uid, gid: a.gid, image: a.image, imageDigest: a.imageDigest, mounts: a.mounts, workdir: a.workdir,
        jobWorkdir: a.jobWorkdir, writable: a.readonly ? false : a.writable, upperSize: a.upperSize, devices: a.devices, save: a.save, timings: a.timings, dryRun: a.dryRun,
        mountHome: a.mountHome, entrypoint: a.entrypoint, remapRoot: a.remapRoot,
      })))
    .command('epilog', 'remove a job\'s rootfs from this node (run by the scheduler\'s epilog)', (y) =>
      y.option('job', { type: 'string', demandOption: true }).option('timings', { type: 'boolean' }),
      (a) => run(async () => (await import('./commands/epilog.js')).epilogCommand({ job: a.job, timings: a.timings })))
    .command('install-slurm', 'install the Slurm prolog, epilog and SPANK plugin', (y) =>
      y.option('prefix', { type: 'string', describe: 'default /usr/local' }).option('dry-run', { type: 'boolean', default: false }),
      (a) => run(async () => (await import('./commands/install-slurm.js')).installSlurm({ dryRun: a.dryRun, prefix: a.prefix })))
    .command('config check', 'validate the configuration and print the effective settings', (y) => y.option('json', { type: 'boolean' }),
      (a) => run(async () => (await import('./commands/config-check.js')).configCheck({ json: a.json })))
    .command('node', 'this node: `node status` (what strata holds here), `node gc` (remove what finished jobs left)', (y) =>
      y.command('status', 'show strata\'s state on this node: layer mounts, jobs, anything stale', (z) => z.option('json', { type: 'boolean' }),
        (a) => run(async () => (await import('./commands/node.js')).nodeStatusCommand({ json: a.json })))
        .command('gc', 'remove the state of jobs no longer running on this node (asks the PBS MoM or Slurm, or --live-jobs)', (z) =>
          z.option('dry-run', { type: 'boolean', describe: 'say what would be removed; change nothing' })
            .option('live-jobs', { type: 'string', describe: 'the jobs still running here, ID,... (instead of asking the scheduler; "" = none)' }),
          (a) => run(async () => (await import('./commands/node.js')).nodeGcCommand({ dryRun: a.dryRun, liveJobs: a.liveJobs })))
        .command('agent', 'run the resident node agent that serves the Slurm prolog/epilog front-ends without starting Node per job (the strata-agent systemd unit runs it)', (z) => z,
          () => run(async () => (await import('./commands/node-agent.js')).nodeAgentCommand()))
        .demandCommand(1, 'name a node command: status, gc or agent'))
    .command('exec [command..]', 'run a command inside your job\'s container on this node (no setuid: user namespace)', (y) =>
      y.positional('command', { type: 'string', array: true, describe: 'the command, after --' })
        .option('job', { type: 'string', describe: 'job id (default: $SLURM_JOB_ID or $PBS_JOBID)' })
        .option('workdir', { type: 'string', describe: 'start in this directory inside the container' }),
      (a) => run(async () => (await import('./commands/exec.js')).execCommand({ job: a.job, workdir: a.workdir, command: [...(a.command ?? []).map(String), ...execTail] })))
    .command('install-pbs', 'print (and run) the qmgr commands that install strata\'s PBS hooks', (y) =>
      y.option('prefix', { type: 'string', describe: 'where strata is installed (default /usr/local)' }).option('dry-run', { type: 'boolean', default: false }),
      (a) => run(async () => (await import('./commands/install-pbs.js')).installPbs({ dryRun: a.dryRun, prefix: a.prefix })))
    .command('doctor', 'check whether this node is fit for container jobs (exit 0 fit, 1 not; a node health check)', (y) => y.option('json', { type: 'boolean', describe: 'print the checks as JSON' }),
      (a) => run(async () => (await import('./commands/doctor.js')).doctorCommand({ json: a.json })))
    .command('tag <source> <target>', 'give an image in the store another NAME:TAG', (y) =>
      y.positional('source', { type: 'string', demandOption: true, describe: 'NAME:TAG or digest' }).positional('target', { type: 'string', demandOption: true, describe: 'NAME:TAG' }),
      (a) => run(async () => (await import('./commands/store-admin.js')).tagCommand({ source: a.source!, target: a.target! })))
    .command('rm <refs..>', 'remove tags (the images\' files go at `strata gc`)', (y) => y.positional('refs', { type: 'string', array: true, demandOption: true }),
      (a) => run(async () => (await import('./commands/store-admin.js')).rmCommand({ refs: a.refs as string[] })))
    .command('gc', 'remove store files no tag, recent untagging or job on this node needs', (y) => y.option('dry-run', { type: 'boolean', describe: 'list what would go; remove nothing' }),
      (a) => run(async () => (await import('./commands/store-admin.js')).gcCommand({ dryRun: a.dryRun })))
    // The writing half of a store write for root or a user (started through setpriv/sudo, request on stdin).
    .command('_store-write', false, (y) => y,
      () => run(async () => (await import('./commands/store-write.js')).storeWriteCommand()))
    .command('verify', 're-hash every layer and blob in the store and check every tag (exit 1 on problems)', (y) => y,
      () => run(async () => (await import('./commands/store-admin.js')).verifyCommand()))
    .demandCommand(1, 'name a command; see strata --help')
    .strict()
    .recommendCommands()
    .help()
    .version(false)
    .fail((message, error) => {
      throw error ?? new UsageError(message);
    });
  try {
    await parser.parseAsync();
    if (!chosen) return 0;
    return await chosen();
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`strata: ${error.message}\nRun 'strata --help' for usage.\n`);
      return 2;
    }
    return renderError(error);
  }
}

class UsageError extends Error {}
