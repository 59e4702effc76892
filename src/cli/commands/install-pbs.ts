// `strata install-pbs [--prefix DIR] [--dry-run]`: put strata's PBS integration in place on this
// host and print the qmgr commands that register it with the PBS server.
//
//   <prefix>/lib/strata/               the bundled build (bin/strata.js, prolog/pbs.js, epilog/pbs.js, ...)
//   <prefix>/lib/strata/pbs/strata_hook.py   the hook (one file, imported as two hooks)
//   <prefix>/lib/strata/pbs/strata_hook.json its configuration (node, lib, config, runtime_dir)
//   <prefix>/bin/strata                      symlink to lib/strata/bin/strata.js (`strata exec` in job scripts)
//
// Run it on every execution host and on the server host (the queuejob hook runs `strata resolve`
// there), then run the printed qmgr commands once, as root on the server: PBS copies MoM hooks to
// every MoM itself. strata never runs qmgr: the server may be another host, and an admin should
// see what changes in their PBS configuration.

import { MOM_EVENTS, RESOURCE } from '../../scheduler/pbs-hooks.js';
import { readFile, readlink } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { configSource, readConfig } from '../../config/load.js';
import { userError } from '../../errors.js';
import { applyInstall, findPackageRoot, listFiles, type InstallAction } from '../install-files.js';

export interface InstallPbsOptions {
  packageRoot?: string;
  prefix?: string;
  /** The node binary the hook runs the entry points with; default this one. */
  node?: string;
  out?: (text: string) => void;
  env?: NodeJS.ProcessEnv;
}

export const HOOK_FILE = 'strata_hook.py';
export const HOOK_CONFIG_FILE = 'strata_hook.json';

export async function installPbs(args: { dryRun: boolean; prefix?: string }, options: InstallPbsOptions = {}): Promise<number> {
  const out = options.out ?? ((text: string) => void process.stdout.write(text));
  const env = options.env ?? process.env;
  const root = options.packageRoot ?? (await findPackageRoot());
  const prefix = resolve(args.prefix ?? options.prefix ?? '/usr/local');
  const libDir = join(prefix, 'lib', 'strata');
  const dist = join(root, 'dist');
  const sources: string[] = await listFiles(dist).catch(() => []);
  if (!sources.includes('prolog/pbs.js')) throw userError('E_NOT_BUILT', `no build to install in ${dist}`, { hint: 'run `npm run build` first' });

  const hookConfig = `${JSON.stringify(await hookSettings(libDir, options.node ?? process.execPath, env), null, 2)}\n`;
  const actions: InstallAction[] = [];
  let unchanged = 0;
  const copy = async (source: string, target: string, mode: number) => {
    const current = await readFile(target).catch(() => undefined);
    if (current?.equals(await readFile(source))) unchanged++;
    else actions.push({ kind: 'copy', source, target, mode, change: current ? 'changed' : 'new' });
  };
  for (const file of sources) await copy(join(dist, file), join(libDir, file), file.startsWith('chunks/') ? 0o644 : 0o755);
  await copy(join(root, 'etc', 'pbs', HOOK_FILE), join(libDir, 'pbs', HOOK_FILE), 0o644);
  const configTarget = join(libDir, 'pbs', HOOK_CONFIG_FILE);
  if ((await readFile(configTarget, 'utf8').catch(() => undefined)) === hookConfig) unchanged++;
  else actions.push({ kind: 'write', target: configTarget, content: hookConfig });
  // On PATH for job scripts (`strata exec -- CMD`), as install-slurm does.
  const cli = join(libDir, 'bin', 'strata.js');
  const cliLink = join(prefix, 'bin', 'strata');
  if ((await readlink(cliLink).catch(() => undefined)) === cli) unchanged++;
  else actions.push({ kind: 'symlink', target: cliLink, pointsTo: cli });

  if (!args.dryRun) await applyInstall({ actions });
  for (const action of actions) out(`${args.dryRun ? 'would install' : 'installed'} ${action.target}${action.kind === 'symlink' ? ` -> ${action.pointsTo}` : ''}\n`);
  out(`strata: ${actions.length} change${actions.length === 1 ? '' : 's'}${args.dryRun ? ' planned (dry run: nothing changed)' : ''}, ${unchanged} files unchanged\n`);
  if (args.dryRun) out(`${configTarget} would be:\n${hookConfig}`);
  out(`\nOn the PBS server, as root (once; PBS sends the MoM hook to every MoM):\n${qmgrCommands(libDir).join('\n')}\n`);
  out(`\n${UPGRADE_NOTE}\n`);
  return 0;
}

/** The qmgr commands: the custom resource, then the server hook and the MoM hook from one file. */
export function qmgrCommands(libDir: string): string[] {
  const hook = join(libDir, 'pbs', HOOK_FILE);
  const config = join(libDir, 'pbs', HOOK_CONFIG_FILE);
  const q = (command: string) => `qmgr -c '${command}'`;
  return [
    q(`create resource ${RESOURCE.name} type=string, flag=${RESOURCE.flags}`),
    q('create hook strata_queuejob'),
    q('set hook strata_queuejob event = queuejob'),
    q(`import hook strata_queuejob application/x-python default ${hook}`),
    q(`import hook strata_queuejob application/x-config default ${config}`),
    q('create hook strata_mom'),
    q(`set hook strata_mom event = "${MOM_EVENTS.join(',')}"`),
    // Only a hook failure (a node fault: an exception) offlines the node; a reject (a user
    // error) deletes the job and leaves the node alone.
    q('set hook strata_mom fail_action = offline_vnodes'),
    q('set hook strata_mom alarm = 120'),
    q('set hook strata_mom freq = 300'),
    q(`import hook strata_mom application/x-python default ${hook}`),
    q(`import hook strata_mom application/x-config default ${config}`),
  ];
}

/** For a server where strata was set up before: what the `create` lines cannot change. */
export const UPGRADE_NOTE = [
  'Already set up? The "create" lines then fail ("already exists"); run the others again, and',
  `make ${RESOURCE.name} reach the MoM hooks (PBS sends a custom resource to MoMs only with flag m):`,
  `qmgr -c 'set resource ${RESOURCE.name} flag = ${RESOURCE.flags}'`,
].join('\n');

async function hookSettings(libDir: string, node: string, env: NodeJS.ProcessEnv) {
  const source = configSource(env);
  let runtimeDir = '/run/strata';
  try {
    runtimeDir = (await readConfig(env)).config?.runtimeDir ?? runtimeDir;
  } catch {
    // `strata config check` reports it; the default is what the prolog would use too.
  }
  return { node, lib: libDir, config: source.path, runtime_dir: runtimeDir, reconcile_grace_seconds: 120 };
}
