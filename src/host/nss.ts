// The job user's identity as the node's name service sees it (files, LDAP, SSSD, ... as
// nsswitch.conf says), for the passwd and group files strata generates per job. The lookups are
// the host's own, made as root by the mount executor (helper/identity.c: in a child of it, with a
// time limit, while the job's mounts go on) so that a job start runs no getent processes; nothing
// here reads the image. A long-lived process (the node agent) keeps each answer for a minute, as
// nscd and sssd keep theirs: a user's next jobs on the node start without asking again.

import { requireHelper, timed } from './job-mounts.js';

export interface HostIdentity {
  /** The user's passwd line, or undefined when the node does not know the uid. */
  passwd?: string;
  /** Lines for the user's primary and supplementary groups that the node knows. */
  groups: string[];
  /**
   * The user's whole group list (getgrouplist(3): what Slurm gives the job's processes), named or
   * not; bind sources are opened with it. Undefined when the lookup gave none.
   */
  groupIds?: number[];
}

/** How long the name service may take (getent's limit before): then the job runs without a name. */
const LOOKUP_TIMEOUT_MS = 10_000;

/** Collects a lookup started by `startIdentityLookup`. */
export type IdentityLookup = () => Promise<HostIdentity>;

/**
 * How long an answer serves later jobs of the same user and group. Only names in the job's
 * generated files depend on it (the job's credentials come from the scheduler): a user added to a
 * group shows in the container's /etc/group within this time, as with nscd's or sssd's caching.
 */
export const IDENTITY_TTL_MS = 60_000;

/** Answers of the name service by "uid:gid", each with when it was asked. */
export class IdentityCache {
  private readonly answers = new Map<string, { identity: HostIdentity; at: number }>();

  constructor(
    private readonly ttlMs = IDENTITY_TTL_MS,
    /** The clock answers are aged by (ms). */
    readonly now = () => performance.now(),
  ) {}

  get(uid: number, gid: number): HostIdentity | undefined {
    const key = `${uid}:${gid}`;
    const kept = this.answers.get(key);
    if (kept && this.now() - kept.at < this.ttlMs) return kept.identity;
    this.answers.delete(key);
    return undefined;
  }

  /** `at`: when the question was asked (an answer is as old as its question). */
  set(uid: number, gid: number, identity: HostIdentity, at: number): void {
    // Stale answers of users who left the node go when one more is kept; the map stays small.
    for (const [key, kept] of this.answers) if (this.now() - kept.at >= this.ttlMs) this.answers.delete(key);
    this.answers.set(`${uid}:${gid}`, { identity, at });
  }
}

const answered = new IdentityCache();

/**
 * Start looking the user up in the executor (it forks the lookup and answers at once), so that the
 * name service works while the job's mounts are made; the function returned collects the answer.
 * Requests to the executor are answered in order: collect only when the entries are needed.
 */
export function startIdentityLookup(uid: number, gid: number, cache: IdentityCache = answered): IdentityLookup {
  const kept = cache.get(uid, gid);
  if (kept) return () => Promise.resolve(kept);
  const asked = cache.now();
  const helper = requireHelper();
  const started = timed(helper, ['identity-start', uid, gid]);
  // Awaited when collected; a set-up that stops earlier (its executor gone) must not leave an
  // unhandled rejection behind, which would end the node agent.
  started.catch(() => undefined);
  return async () => {
    await started;
    const reply = await timed(helper, ['identity-wait', LOOKUP_TIMEOUT_MS]);
    // A name service that does not answer in time: the files hold the image's entries (and root's).
    if (!reply.ok) return { groups: [] };
    const [passwd = '', ...groups] = Buffer.from(reply.value, 'hex').toString('utf8').split('\n').filter((line, index) => index === 0 || line);
    // The helper formats the entries itself; a uid the node does not know gives an empty first line.
    const identity = { passwd: passwd.split(':')[2] === String(uid) ? passwd : undefined, groups: groups.filter((line) => line.split(':').length === 4), groupIds: groupList(groups) };
    cache.set(uid, gid, identity, asked);
    return identity;
  };
}

/** The helper's "@groups GID,GID,..." line (helper/identity.c), or undefined. */
function groupList(lines: string[]): number[] | undefined {
  const listed = lines.find((line) => line.startsWith('@groups '))?.slice('@groups '.length);
  if (!listed || !/^\d+(,\d+)*$/.test(listed)) return undefined;
  const ids = listed.split(',').map(Number);
  return ids.every((id) => id < 0xffffffff) ? ids : undefined;
}
