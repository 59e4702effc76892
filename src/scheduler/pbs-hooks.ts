// What strata's PBS hooks are registered for: shared by install-pbs (which registers them) and the
// doctor (which checks them).

/**
 * The MoM events: set-up on every host, the job script's start (where a set-up error fails the
 * job with its message), teardown, and reconciliation of what is left over.
 */
export const MOM_EVENTS = ['execjob_begin', 'execjob_launch', 'execjob_end', 'exechost_startup', 'exechost_periodic'];
/** The custom resource for `qsub -l container_image=...`; flag m sends it to MoM hooks too. */
export const RESOURCE = { name: 'container_image', flags: 'm' };
