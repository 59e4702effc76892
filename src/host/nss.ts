// The job user's identity as the node's name service sees it (files, LDAP, SSSD, ... as
// nsswitch.conf says), for the passwd and group files strata generates per job. The lookups are
// the host's own, made as root by the mount executor (helper/identity.c: in a child of it, with a
// time limit, while the job's mounts go on) so that a job start runs no getent processes; nothing
// here reads the image.

import { requireHelper, timed } from './job-mounts.js';

export interface HostIdentity {
  /** The user's passwd line, or undefined when the node does not know the uid. */
  passwd?: string;
  /** Lines for the user's primary and supplementary groups that the node knows. */
  groups: string[];
}

/** How long the name service may take (getent's limit before): then the job runs without a name. */
const LOOKUP_TIMEOUT_MS = 10_000;

/** Collects a lookup started by `startIdentityLookup`. */
export type IdentityLookup = () => Promise<HostIdentity>;

/**
 * Start looking the user up in the executor (it forks the lookup and answers at once), so that the
 * name service works while the job's mounts are made; the function returned collects the answer.
 * Requests to the executor are answered in order: collect only when the entries are needed.
 */
export function startIdentityLookup(uid: number, gid: number): IdentityLookup {
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
    return { passwd: passwd.split(':')[2] === String(uid) ? passwd : undefined, groups: groups.filter((line) => line.split(':').length === 4) };
  };
}
