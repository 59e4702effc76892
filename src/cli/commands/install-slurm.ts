// `strata install-slurm [--prefix DIR] [--dry-run]`: put strata's Slurm integration in place on this
// machine, and say what changed. Run it on every node (or into a shared prefix), then add the
// printed slurm.conf lines once, cluster-wide.
//
//   <prefix>/lib/strata/               the bundled build (bin/strata.js, prolog/slurm.js,
//                                      epilog/slurm.js, chunks/), the native Slurm front-ends
//                                      prolog/slurm and epilog/slurm, and the SPANK plugin strata.so
//   <prefix>/bin/strata                symlink to lib/strata/bin/strata.js
//   <sysconfdir>/slurm/plugstack.conf.d/zz-strata.conf   the plugstack line (never overwritten once
//                                      there), named to sort last: strata's plugin must load after
//                                      every other one (PLUGSTACK_SNIPPET); the strata.conf of an
//                                      older install is renamed to it, its content kept
//   <sysconfdir>/systemd/system/strata-agent.service  the node agent's unit (agent-unit.ts; enabling
//                                      it is the admin's step, printed as a note)
//
// prefix defaults to /usr/local; sysconfdir is /etc for the prefixes /usr and /usr/local, else
// <prefix>/etc. slurm.conf is only read, never edited: it must be the same on every node, which is
// the site's configuration management's job. Every file is replaced by rename, so a prolog that is
// running, or a slurmd that has the plugin mapped, keeps its old copy.
//
// Shape: planInstall() looks at the disk and returns the actions (pure apart from reads);
// applyInstall() (cli/install-files.ts) performs them; installSlurm() renders both.

import { lstat, readFile, readlink } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { userError } from '../../errors.js';
import { applyInstall, findPackageRoot, listFiles, type InstallAction } from '../install-files.js';
import { readConfig } from '../../config/load.js';
import { OLD_PLUGSTACK_SNIPPET, PLUGSTACK_SNIPPET, parseSlurmConf, prologRunsAtAllocation } from '../../scheduler/slurm-conf.js';
import { AGENT_UNIT, agentUnit } from './agent-unit.js';

export interface InstallOptions {
  /** Where the strata package is (holds dist/ and spank/strata.so); found from this file by default. */
  packageRoot?: string;
  prefix?: string;
  sysconfdir?: string;
  /** slurm.conf to check; default $SLURM_CONF or <sysconfdir>/slurm/slurm.conf. */
  slurmConf?: string;
  /** The node runtime directory the plugin looks in; default from the strata configuration. */
  runtimeDir?: string;
  out?: (text: string) => void;
  env?: NodeJS.ProcessEnv;
  /** The Node that runs the agent; default the one running this. */
  nodePath?: string;
}

export interface InstallPlan {
  prefix: string;
  libDir: string;
  actions: InstallAction[];
  unchanged: number;
  /** Things the admin must do by hand (slurm.conf lines, plugstack includes), one per entry. */
  notes: string[];
  /** The installed entry points, for the slurm.conf lines. */
  paths: { prolog: string; epilog: string; cli: string; plugin: string; plugstackSnippet: string; agentUnit: string };
}

export async function installSlurm(args: { dryRun: boolean; prefix?: string }, options: InstallOptions = {}): Promise<number> {
  const out = options.out ?? ((text: string) => void process.stdout.write(text));
  const plan = await planInstall({ ...options, prefix: args.prefix ?? options.prefix });
  const verb = (action: InstallAction) =>
    args.dryRun
      ? { copy: 'would install', remove: 'would remove', rename: 'would rename', symlink: 'would link', write: 'would write' }[action.kind]
      : { copy: 'installed', remove: 'removed', rename: 'renamed', symlink: 'linked', write: 'wrote' }[action.kind];

  if (!args.dryRun) await applyInstall(plan);
  for (const action of plan.actions) {
    const detail =
      action.kind === 'copy' ? ` (${action.change})` : action.kind === 'symlink' ? ` -> ${action.pointsTo}` : action.kind === 'rename' ? ` (from ${action.from})` : '';
    out(`${verb(action)} ${action.target}${detail}\n`);
  }
  const changed = plan.actions.length;
  out(
    changed === 0
      ? `strata: Slurm integration in ${plan.libDir} is up to date (${plan.unchanged} files unchanged)\n`
      : `strata: ${changed} change${changed === 1 ? '' : 's'}${args.dryRun ? ' planned (dry run: nothing changed)' : ''}, ${plan.unchanged} files unchanged\n`,
  );
  for (const note of plan.notes) out(`${note}\n`);
  return 0;
}

export async function planInstall(options: InstallOptions = {}): Promise<InstallPlan> {
  const env = options.env ?? process.env;
  const root = options.packageRoot ?? (await findPackageRoot());
  const prefix = resolve(options.prefix ?? '/usr/local');
  const sysconfdir = options.sysconfdir ?? (prefix === '/usr' || prefix === '/usr/local' ? '/etc' : join(prefix, 'etc'));
  const libDir = join(prefix, 'lib', 'strata');
  const dist = join(root, 'dist');
  const pluginSource = join(root, 'spank', 'strata.so');
  const sources = await listFiles(dist).catch((): string[] => []);
  if (!sources.some((file) => file === 'prolog/slurm.js')) {
    throw userError('E_NOT_BUILT', `no build to install in ${dist}`, { hint: 'run `npm run build` first' });
  }
  // The native front-ends (front/strata-front.c) where the build has them: a job without a
  // container then costs no Node start-up. They exec the .js beside them for everything else.
  const entry = (phase: string) => join(libDir, phase, sources.includes(`${phase}/slurm`) ? 'slurm' : 'slurm.js');
  const paths = {
    prolog: entry('prolog'),
    epilog: entry('epilog'),
    cli: join(libDir, 'bin', 'strata.js'),
    plugin: join(libDir, 'strata.so'),
    plugstackSnippet: join(sysconfdir, 'slurm', 'plugstack.conf.d', PLUGSTACK_SNIPPET),
    agentUnit: join(sysconfdir, 'systemd', 'system', AGENT_UNIT),
  };
  if (!(await exists(pluginSource))) {
    throw userError('E_NOT_BUILT', `the SPANK plugin ${pluginSource} is not built`, {
      hint: 'run `make -C spank` (needs the Slurm headers: Debian libslurm-dev)',
    });
  }

  const actions: InstallAction[] = [];
  let unchanged = 0;
  const wanted = new Set<string>();
  const copy = async (source: string, target: string, mode: number) => {
    wanted.add(target);
    const current = await readFile(target).catch(() => undefined);
    if (current === undefined) actions.push({ kind: 'copy', source, target, mode, change: 'new' });
    else if (!current.equals(await readFile(source)) || ((await lstat(target)).mode & 0o7777) !== mode) {
      actions.push({ kind: 'copy', source, target, mode, change: 'changed' });
    } else unchanged++;
  };
  for (const file of sources) {
    const source = join(dist, file);
    await copy(source, join(libDir, file), (await lstat(source)).mode & 0o111 ? 0o755 : 0o644);
  }
  await copy(pluginSource, paths.plugin, 0o644);

  // Files of an earlier build that this one no longer has (chunk names carry a content hash).
  for (const file of await listFiles(libDir).catch(() => [])) {
    const target = join(libDir, file);
    if (!wanted.has(target)) actions.push({ kind: 'remove', target });
  }

  const cliLink = join(prefix, 'bin', 'strata');
  if ((await readlink(cliLink).catch(() => undefined)) !== paths.cli) {
    actions.push({ kind: 'symlink', target: cliLink, pointsTo: paths.cli });
  }

  const notes: string[] = [];
  const runtimeDir = options.runtimeDir ?? (await configuredRuntimeDir(env, notes));
  const slurmConf = options.slurmConf ?? env.SLURM_CONF ?? join(sysconfdir, 'slurm', 'slurm.conf');
  // Slurm makes each step's PMIx client directory under TmpFS (default /tmp); the plugin binds it.
  const settings = parseSlurmConf(await readFile(slurmConf, 'utf8').catch(() => ''));
  const tmpFs = settings.get('tmpfs');
  const pmixTmpdir = tmpFs && tmpFs !== '/tmp' && tmpFs.startsWith('/') ? ` pmix_tmpdir=${tmpFs}` : '';
  const snippet = `# strata: --container-image and friends (written by strata install-slurm)\nrequired ${paths.plugin} strata=${paths.cli} runtime_dir=${runtimeDir}${pmixTmpdir}\n`;
  const plugstackConf = settings.get('plugstackconfig') ?? join(dirname(slurmConf), 'plugstack.conf');
  await planSnippet(paths.plugstackSnippet, snippet, plugstackConf, actions, notes);

  // The node agent's unit is strata's own file: brought up to date like the build.
  const unit = agentUnit(paths.cli, options.nodePath ?? process.execPath, env.STRATA_CONFIG);
  const currentUnit = await readFile(paths.agentUnit, 'utf8').catch(() => undefined);
  if (currentUnit !== unit) {
    actions.push({ kind: 'write', target: paths.agentUnit, content: unit });
    notes.push(`the node agent (optional; without it every container job's prolog and epilog start Node): systemctl daemon-reload && systemctl enable --now ${AGENT_UNIT}`);
  }

  notes.push(...(await checkSlurmConf(slurmConf, paths)));
  return { prefix, libDir, actions, unchanged, notes, paths };
}

/**
 * The plugstack snippet: written once, never overwritten (an admin's edits stay). An older
 * install-slurm wrote strata.conf, which sorts before most sites' snippets: it is renamed, content
 * kept, so that the upgrade itself puts strata's plugin last. rename(2), not write + remove: a step
 * starting meanwhile loads the plugin exactly once (twice fails it: its options are taken). A
 * plugstack.conf that includes strata.conf by name orders it itself, and a rename would drop it:
 * then it stays (doctor checks the order).
 */
async function planSnippet(target: string, snippet: string, plugstackConf: string, actions: InstallAction[], notes: string[]): Promise<void> {
  const oldSnippet = join(dirname(target), OLD_PLUGSTACK_SNIPPET);
  const current = await readFile(target, 'utf8').catch(() => undefined);
  const old = await readFile(oldSnippet, 'utf8').catch(() => undefined);
  const stack = await readFile(plugstackConf, 'utf8').catch(() => '');
  let kept = current;
  if (old !== undefined && includedByName(stack, oldSnippet)) {
    notes.push(`kept ${oldSnippet}: ${plugstackConf} includes it by name, so that line decides the plugin order (strata's must load last; \`strata doctor\` checks)`);
    return;
  }
  if (old !== undefined && current === undefined) {
    actions.push({ kind: 'rename', from: oldSnippet, target });
    notes.push(`renamed ${oldSnippet} (written by an older strata) to ${PLUGSTACK_SNIPPET}, so that strata's plugin loads after every other SPANK plugin (docs/slurm.md)`);
    kept = old;
  } else if (old !== undefined && old === current) {
    actions.push({ kind: 'remove', target: oldSnippet });
  } else if (old !== undefined) {
    notes.push(`${oldSnippet} (from an older strata) and ${target} both exist: remove one (a step that loads strata's plugin twice fails), keeping the name ${PLUGSTACK_SNIPPET}`);
  }
  if (kept === undefined) actions.push({ kind: 'write', target, content: snippet });
  else if (kept !== snippet) notes.push(`kept ${target} as it is (it differs from what strata would write:\n  ${snippet.split('\n')[1]})`);
}

const includedByName = (plugstack: string, file: string) =>
  plugstack.split('\n').some((line) => {
    const [word, arg] = line.replace(/#.*/, '').trim().split(/\s+/);
    return word === 'include' && arg === file;
  });

/**
 * What slurm.conf still needs, as the exact lines to add. Keys are case-insensitive in
 * slurm.conf; Contain and X11 imply Alloc.
 */
export async function checkSlurmConf(path: string, paths: InstallPlan['paths']): Promise<string[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return [
      `could not read ${path}; slurm.conf (the same on every node) needs:`,
      `  Prolog=${paths.prolog}`,
      `  Epilog=${paths.epilog}`,
      '  PrologFlags=Alloc',
      `and plugstack.conf needs: include ${dirname(paths.plugstackSnippet)}/*.conf`,
    ];
  }
  const settings = parseSlurmConf(text);
  const missing: string[] = [];
  const prolog = settings.get('prolog');
  const epilog = settings.get('epilog');
  if (prolog !== paths.prolog) missing.push(`  Prolog=${paths.prolog}${prolog ? `   (now: Prolog=${prolog})` : ''}`);
  if (epilog !== paths.epilog) missing.push(`  Epilog=${paths.epilog}${epilog ? `   (now: Epilog=${epilog})` : ''}`);
  if (!prologRunsAtAllocation(settings.get('prologflags'))) {
    const now = settings.get('prologflags');
    missing.push(`  PrologFlags=${now ? `${now},Alloc` : 'Alloc'}`);
  }
  const notes = missing.length ? [`${path} (the same on every node) needs:`, ...missing] : [`${path}: Prolog, Epilog and PrologFlags are set for strata`];

  const plugstack = settings.get('plugstackconfig') ?? join(dirname(path), 'plugstack.conf');
  const stack = await readFile(plugstack, 'utf8').catch(() => '');
  const snippetDir = dirname(paths.plugstackSnippet);
  const includesSnippet =
    [paths.plugstackSnippet, `${snippetDir}/*.conf`, join(snippetDir, OLD_PLUGSTACK_SNIPPET)].some((file) => includedByName(stack, file)) ||
    stack.split('\n').some((line) => line.includes(paths.plugin));
  if (!includesSnippet) notes.push(`${plugstack} needs the line: include ${dirname(paths.plugstackSnippet)}/*.conf`);
  return notes;
}


async function configuredRuntimeDir(env: NodeJS.ProcessEnv, notes: string[]): Promise<string> {
  try {
    const { config, origin } = await readConfig(env);
    if (config) return config.runtimeDir;
    notes.push(`the strata configuration ${origin} has problems (see \`strata config check\`); assumed runtime_dir=/run/strata`);
  } catch (error) {
    notes.push(`could not read the strata configuration (${error instanceof Error ? error.message : String(error)}); assumed runtime_dir=/run/strata`);
  }
  return '/run/strata';
}

const exists = (path: string) =>
  lstat(path).then(
    () => true,
    () => false,
  );

