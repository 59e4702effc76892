// `strata install-slurm [--prefix DIR] [--dry-run]`: put strata's Slurm integration in place on this
// machine, and say what changed. Run it on every node (or into a shared prefix), then add the
// printed slurm.conf lines once, cluster-wide.
//
//   <prefix>/lib/strata/               the bundled build (bin/strata.js, prolog/slurm.js,
//                                      epilog/slurm.js, chunks/), the native Slurm front-ends
//                                      prolog/slurm and epilog/slurm, and the SPANK plugin strata.so
//   <prefix>/bin/strata                symlink to lib/strata/bin/strata.js
//   <sysconfdir>/slurm/plugstack.conf.d/strata.conf   the plugstack line (never overwritten once there)
//
// prefix defaults to /usr/local; sysconfdir is /etc for the prefixes /usr and /usr/local, else
// <prefix>/etc. slurm.conf is only read, never edited: it must be the same on every node, which is
// the site's configuration management's job. Every file is replaced by rename, so a prolog that is
// running, or a slurmd that has the plugin mapped, keeps its old copy.
//
// Shape: planInstall() looks at the disk and returns the actions (pure apart from reads);
// applyInstall() performs them; installSlurm() renders both.

import { constants } from 'node:fs';
import { chmod, copyFile, lstat, mkdir, readFile, readdir, readlink, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { userError } from '../../errors.js';
import { readConfig } from '../../config/load.js';
import { parseSlurmConf, prologRunsAtAllocation } from '../../scheduler/slurm-conf.js';

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
}

export type InstallAction =
  | { kind: 'copy'; source: string; target: string; mode: number; change: 'new' | 'changed' }
  | { kind: 'remove'; target: string }
  | { kind: 'symlink'; target: string; pointsTo: string }
  | { kind: 'write'; target: string; content: string };

export interface InstallPlan {
  prefix: string;
  libDir: string;
  actions: InstallAction[];
  unchanged: number;
  /** Things the admin must do by hand (slurm.conf lines, plugstack includes), one per entry. */
  notes: string[];
  /** The installed entry points, for the slurm.conf lines. */
  paths: { prolog: string; epilog: string; cli: string; plugin: string; plugstackSnippet: string };
}

export async function installSlurm(args: { dryRun: boolean; prefix?: string }, options: InstallOptions = {}): Promise<number> {
  const out = options.out ?? ((text: string) => void process.stdout.write(text));
  const plan = await planInstall({ ...options, prefix: args.prefix ?? options.prefix });
  const verb = (action: InstallAction) =>
    args.dryRun
      ? { copy: 'would install', remove: 'would remove', symlink: 'would link', write: 'would write' }[action.kind]
      : { copy: 'installed', remove: 'removed', symlink: 'linked', write: 'wrote' }[action.kind];

  if (!args.dryRun) await applyInstall(plan);
  for (const action of plan.actions) {
    const detail =
      action.kind === 'copy' ? ` (${action.change})` : action.kind === 'symlink' ? ` -> ${action.pointsTo}` : '';
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
    plugstackSnippet: join(sysconfdir, 'slurm', 'plugstack.conf.d', 'strata.conf'),
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
  const tmpFs = parseSlurmConf(await readFile(slurmConf, 'utf8').catch(() => '')).get('tmpfs');
  const pmixTmpdir = tmpFs && tmpFs !== '/tmp' && tmpFs.startsWith('/') ? ` pmix_tmpdir=${tmpFs}` : '';
  const snippet = `# strata: --container-image and friends (written by strata install-slurm)\nrequired ${paths.plugin} strata=${paths.cli} runtime_dir=${runtimeDir}${pmixTmpdir}\n`;
  const existing = await readFile(paths.plugstackSnippet, 'utf8').catch(() => undefined);
  if (existing === undefined) actions.push({ kind: 'write', target: paths.plugstackSnippet, content: snippet });
  else if (existing !== snippet) notes.push(`kept ${paths.plugstackSnippet} as it is (it differs from what strata would write:\n  ${snippet.split('\n')[1]})`);

  notes.push(...(await checkSlurmConf(slurmConf, paths)));
  return { prefix, libDir, actions, unchanged, notes, paths };
}

export async function applyInstall(plan: Pick<InstallPlan, 'actions'>): Promise<void> {
  for (const action of plan.actions) {
    if (action.kind === 'remove') {
      await rm(action.target, { force: true });
      continue;
    }
    await mkdir(dirname(action.target), { recursive: true, mode: 0o755 });
    const temp = `${action.target}.strata-new`;
    await rm(temp, { force: true });
    if (action.kind === 'copy') {
      await copyFile(action.source, temp, constants.COPYFILE_FICLONE);
      await chmod(temp, action.mode);
    } else if (action.kind === 'symlink') {
      await symlink(action.pointsTo, temp);
    } else {
      await writeFile(temp, action.content, { mode: 0o644, flag: 'wx' });
    }
    // rename: a running prolog keeps its file, a slurmd keeps its mapped plugin.
    await rename(temp, action.target);
  }
}

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
  const includesSnippet = stack.split('\n').some((line) => {
    const [word, arg] = line.trim().split(/\s+/);
    return (word === 'include' && arg !== undefined && (arg === paths.plugstackSnippet || arg === `${dirname(paths.plugstackSnippet)}/*.conf`)) || line.includes(paths.plugin);
  });
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

/** The directory holding strata's package.json, walking up from this (bundled or source) file. */
export async function findPackageRoot(): Promise<string> {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const manifest = await readFile(join(dir, 'package.json'), 'utf8').catch(() => undefined);
    if (manifest && (JSON.parse(manifest) as { name?: string }).name === 'strata') return dir;
    const parent = dirname(dir);
    if (parent === dir) {
      throw userError('E_NOT_BUILT', 'cannot find the strata build to install from (no package.json above this program)', {
        hint: 'run it from the source tree: node dist/bin/strata.js install-slurm',
      });
    }
    dir = parent;
  }
}

/** Regular files below `dir`, as paths relative to it. */
export async function listFiles(dir: string): Promise<string[]> {
  const files: string[] = [];
  const walk = async (current: string) => {
    for (const entry of await readdir(current, { withFileTypes: true })) {
      const path = join(current, entry.name);
      if (entry.isDirectory()) await walk(path);
      else if (entry.isFile() && !entry.name.endsWith('.strata-new')) files.push(relative(dir, path));
    }
  };
  await walk(dir);
  return files.sort();
}

const exists = (path: string) =>
  lstat(path).then(
    () => true,
    () => false,
  );

