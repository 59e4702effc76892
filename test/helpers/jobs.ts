// Jobs on a test site (test/helpers/site.ts), the way the scheduler runs them: the prolog and epilog
// commands, the job's runtime directory and rootfs, and commands inside the job (chroot, or
// `strata exec` as the job's user). One place for what every root-level test file needs.

import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { STRATA, runCommand, type RunOutput, type Site } from './site.js';

export interface JobUser {
  /** The job's uid (default 1000) and gid (default: the uid). */
  uid?: number;
  gid?: number;
}

/** Where the prolog of a node (a site, a PBS mom: anything with a runtime dir) puts a job's state and mounts its rootfs. */
export const jobDir = (node: { runtime: string }, job: string): string => join(node.runtime, 'jobs', job);
export const jobRootfs = (node: { runtime: string }, job: string): string => join(jobDir(node, job), 'rootfs');

/** A shell script chrooted into the job's rootfs, as root or as `userspec` ("uid:gid"). */
export const chrootJob = (node: { runtime: string }, job: string, script: string, userspec?: string): SpawnSyncReturns<string> =>
  spawnSync('/usr/sbin/chroot', [...(userspec ? [`--userspec=${userspec}`] : []), jobRootfs(node, job), '/bin/sh', '-c', script], { encoding: 'utf8' });

/**
 * Job helpers for the site `getSite()` returns (a function: test files make their site in
 * beforeAll). Jobs run as `user`; `inJob` runs a shell script chrooted into the job's rootfs, as
 * root unless `chrootAsUser` (then as the job's uid:gid).
 */
export function jobsOn(getSite: () => Site, user: JobUser & { chrootAsUser?: boolean } = {}) {
  const uid = user.uid ?? 1000;
  const gid = user.gid ?? uid;
  const dir = (job: string) => jobDir(getSite(), job);
  const rootfs = (job: string) => jobRootfs(getSite(), job);
  const epilog = (job: string, env: NodeJS.ProcessEnv = {}) => getSite().run(['epilog', '--job', job], { env });
  return {
    jobDir: dir,
    rootfs,
    prolog: (job: string, image: string, extra: string[] = [], env: NodeJS.ProcessEnv = {}) =>
      getSite().run(['prolog', '--job', job, '--uid', String(uid), '--gid', String(gid), '--image', image, ...extra], { env }),
    epilog,
    /** The job's error file (the one-line message the prolog left for the user), or ''. */
    errorOf: (job: string): string => (existsSync(join(dir(job), 'error')) ? readFileSync(join(dir(job), 'error'), 'utf8') : ''),
    /** Runs the epilog of every job the site still has (in afterEach/afterAll). */
    epilogAll: async (): Promise<RunOutput[]> => {
      const jobs = join(getSite().runtime, 'jobs');
      const results: RunOutput[] = [];
      for (const job of existsSync(jobs) ? readdirSync(jobs) : []) results.push(await epilog(job));
      return results;
    },
    inJob: (job: string, script: string) => chrootJob(getSite(), job, script, user.chrootAsUser ? `${uid}:${gid}` : undefined),
  };
}

/**
 * `strata exec ARGS` as `uid` (gid the same, no supplementary groups), from `cwd` (default /), with
 * only `env` as the caller's environment.
 */
export function strataExecAs(uid: number, args: string[], options: { cwd?: string; env: NodeJS.ProcessEnv }): Promise<RunOutput> {
  return runCommand('/usr/bin/setpriv', [`--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', process.execPath, STRATA, 'exec', ...args], { cwd: options.cwd ?? '/', env: options.env });
}
