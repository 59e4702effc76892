# strata's OpenPBS / PBS Pro hook: a thin shim between PBS and strata's compiled entry points.
# The same file is imported as two hooks (see `strata install-pbs`):
#
#   strata_queuejob  server, queuejob: check the requested image with `strata resolve` and pin it
#                    to a manifest digest in the job's Variable_List (STRATA_IMAGE_DIGEST), or
#                    reject the qsub with strata's message.
#   strata_mom       every MoM: execjob_begin sets the job's container up on this host
#                    (prolog/pbs.js), execjob_launch fails the job script with strata's message
#                    if that set-up hit a user error, execjob_end removes the container
#                    (epilog/pbs.js), exechost_startup and exechost_periodic remove what is left
#                    of jobs this MoM no longer has.
#
# The image comes from `qsub -l container_image=NAME:TAG` (custom string resource) or
# `qsub -v STRATA_CONTAINER_IMAGE=NAME:TAG`; STRATA_CONTAINER_MOUNTS, _WORKDIR, _READONLY, _DEVICES,
# _WRITABLE, _UPPER_SIZE and _MOUNT_HOME (yes/no) in Variable_List mean what they mean for Slurm. At the MoM the image
# is read from the STRATA_IMAGE the queuejob hook put in Variable_List: Variable_List always
# reaches MoM hooks, a custom resource only if it was created with flag=m.
#
# Failures follow strata's one rule: a user error fails the job, only a node fault takes the
# node out. User error at qsub: the qsub is rejected with the message. User error at job start:
# the prolog records it for the job on that host and the event is accepted; execjob_launch then
# replaces the job script with one that prints the message to the job's error file and exits 1,
# and `strata exec` on any host prints it too. (A rejected execjob_begin would show the user
# only "Execution server rejected request"; a MoM hook cannot set the job's comment.) Node fault
# in execjob_begin or exechost_startup: the hook raises, and fail_action=offline_vnodes offlines
# the node (the job is requeued); in execjob_end or exechost_periodic, where PBS has no fail
# action, the hook offlines this MoM's vnodes itself.
#
# PBS runs hook code with __name__ set to 'builtins' (Python 3) or '__builtin__' (Python 2),
# never '__main__': see the end of this file.
#
# Settings come from the hook's configuration file (JSON, written by `strata install-pbs`):
#   {"node": "/usr/bin/node", "lib": "/usr/local/lib/strata", "config": "/etc/strata/strata.yaml",
#    "runtime_dir": "/run/strata", "reconcile_grace_seconds": 120}
# Written for the Python 3 of OpenPBS >= 20 and the Python 2.7 of older PBS Pro alike.

import grp
import json
import os
import pwd
import re
import subprocess
import time

import pbs

DEFAULTS = {
    "node": "/usr/bin/node",
    "lib": "/usr/local/lib/strata",
    "config": "",
    "runtime_dir": "/run/strata",
    # Job directories younger than this are left alone by the reconciliation: their job may be
    # starting right now.
    "reconcile_grace_seconds": 120,
}

# `strata resolve`'s exit status for a user error (an unknown image).
USER_ERROR = 2
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
# Variable_List names -> what the prolog entry point reads.
JOB_OPTIONS = (
    ("STRATA_CONTAINER_MOUNTS", "STRATA_MOUNTS"),
    ("STRATA_CONTAINER_WORKDIR", "STRATA_WORKDIR"),
    ("STRATA_CONTAINER_WRITABLE", "STRATA_WRITABLE"),
    ("STRATA_CONTAINER_READONLY", "STRATA_READONLY"),
    ("STRATA_CONTAINER_UPPER_SIZE", "STRATA_UPPER_SIZE"),
    ("STRATA_CONTAINER_DEVICES", "STRATA_DEVICES"),
    ("STRATA_CONTAINER_MOUNT_HOME", "STRATA_MOUNT_HOME"),
    ("STRATA_IMAGE_DIGEST", "STRATA_IMAGE_DIGEST"),
    ("PBS_O_WORKDIR", "STRATA_JOB_WORKDIR"),
)


class NodeFault(Exception):
    """Something is wrong with this host, not with the job."""


def settings():
    conf = dict(DEFAULTS)
    path = getattr(pbs, "hook_config_filename", None)
    if path:
        with open(path) as handle:
            conf.update(json.load(handle))
    return conf


def attribute(mapping, name):
    """A job resource or variable as a string; None when unset or empty."""
    try:
        value = mapping[name]
    except Exception:
        return None
    if value is None or str(value) == "":
        return None
    return str(value)


def requested_image(job):
    """The job's image. At the MoM, STRATA_IMAGE (pinned at qsub) is what arrives for sure."""
    return (attribute(job.Variable_List, "STRATA_IMAGE") or attribute(job.Resource_List, "container_image")
            or attribute(job.Variable_List, "STRATA_CONTAINER_IMAGE"))


def recorded_error(conf, jobid):
    """The user error the prolog recorded for the job on this host (runtime_dir/jobs/ID/error)."""
    if "/" in jobid or jobid in ("", ".", ".."):
        return None
    try:
        with open(os.path.join(conf["runtime_dir"], "jobs", jobid, "error")) as handle:
            line = handle.readline().strip()
    except (IOError, OSError):
        return None
    return line or "strata: the container could not be set up"


def run(conf, args, extra_env):
    """Run a strata entry point; (status, stdout, last stderr line). stdin is /dev/null."""
    env = dict(os.environ)
    env.update(extra_env)
    if conf.get("config"):
        env["STRATA_CONFIG"] = conf["config"]
    devnull = open(os.devnull, "rb")
    try:
        child = subprocess.Popen([conf["node"], os.path.join(conf["lib"], args[0])] + list(args[1:]),
                                 stdin=devnull, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 env=env, close_fds=True)
        out, err = child.communicate()
    except OSError as error:
        raise NodeFault("strata: cannot run %s: %s" % (conf["node"], error))
    finally:
        devnull.close()
    lines = [line for line in err.decode("utf-8", "replace").splitlines() if line.strip()]
    message = lines[-1].strip() if lines else "exit status %d" % child.returncode
    return child.returncode, out.decode("utf-8", "replace"), message


def offline_this_host(event, message):
    """Offline this MoM's vnodes: for events that have no fail_action of their own."""
    for name in event.vnode_list.keys():
        event.vnode_list[name].state = pbs.ND_OFFLINE
        event.vnode_list[name].comment = message[:250]
    pbs.logmsg(pbs.LOG_ERROR, "%s (vnodes offlined)" % message)


def queuejob(event, conf):
    job = event.job
    from_resource = attribute(job.Resource_List, "container_image")
    from_variable = attribute(job.Variable_List, "STRATA_CONTAINER_IMAGE")
    if from_resource and from_variable and from_resource != from_variable:
        event.reject("strata: -l container_image=%s and -v STRATA_CONTAINER_IMAGE=%s name different images; give the image once"
                     % (from_resource, from_variable))
    image = from_resource or from_variable
    if not image:
        # The MoM trusts these as pinned here; a job may not bring its own.
        for name in ("STRATA_IMAGE", "STRATA_IMAGE_DIGEST"):
            if attribute(job.Variable_List, name):
                event.reject("strata: %s is set by strata at qsub, not by jobs; ask for an image with -l container_image=NAME:TAG" % name)
        event.accept()
    if image.startswith("~/"):
        # `~/` is the submitting user's own namespace (user imports). This hook runs as root on the
        # server, so name the user: event.requestor is who ran qsub (PBS Hooks Guide, pbs.event()).
        owner = str(event.requestor or "").split("@")[0]
        if not owner:
            event.reject("strata: %s names your own images, but PBS did not say who you are; write ~USER/%s" % (image, image[2:]))
        image = "~%s/%s" % (owner, image[2:])
    try:
        status, out, message = run(conf, ["bin/strata.js", "resolve", image], {})
    except NodeFault as fault:
        event.reject("%s; the image could not be checked, ask your admin" % fault)
    digest = out.strip()
    if status == 0 and DIGEST.match(digest):
        job.Variable_List["STRATA_IMAGE"] = image
        job.Variable_List["STRATA_IMAGE_DIGEST"] = digest
        pbs.logmsg(pbs.LOG_DEBUG, "strata: %s pinned to %s" % (image, digest))
        event.accept()
    if status == USER_ERROR:
        event.reject(message if message.startswith("strata: ") else "strata: " + message)
    event.reject("strata: could not check image %s (`strata resolve` exit status %d: %s); ask your admin"
                 % (image, status, message))


def owner_ids(job):
    user = str(job.euser)
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise NodeFault("strata: job %s: user %s is unknown on this host" % (job.id, user))
    gid = entry.pw_gid
    group = getattr(job, "egroup", None)
    if group:
        group = str(group)
        try:
            gid = grp.getgrnam(group).gr_gid
        except KeyError:
            raise NodeFault("strata: job %s: group %s is unknown on this host" % (job.id, group))
    return entry.pw_uid, gid


def execjob_begin(event, conf):
    job = event.job
    image = requested_image(job)
    if not image:
        event.accept()
    uid, gid = owner_ids(job)
    env = {"PBS_JOBID": str(job.id), "STRATA_JOB_UID": str(uid), "STRATA_JOB_GID": str(gid), "STRATA_IMAGE": image}
    for variable, name in JOB_OPTIONS:
        value = attribute(job.Variable_List, variable)
        if value is not None:
            env[name] = value
    role = "mother superior" if job.in_ms_mom() else "sister"
    status, _, message = run(conf, ["prolog/pbs.js"], env)
    if status != 0:
        raise NodeFault(message)
    # exec_host is not set at the MoM; the event's vnode list is.
    where = "%s (%s; job vnodes %s)" % (pbs.get_local_nodename(), role, ",".join(sorted(event.vnode_list.keys())))
    error = recorded_error(conf, str(job.id))
    if error:
        pbs.logjobmsg(str(job.id), "%s on %s; the job will fail with this message" % (error, where))
    else:
        pbs.logjobmsg(str(job.id), "strata: container %s ready on %s" % (image, where))
    event.accept()


# Runs in place of the job script when set-up failed: the message goes to the job's error file.
FAILED_SCRIPT = 'printf "%s\\n" "$1" >&2; exit 1'


def execjob_launch(event, conf):
    job = event.job
    if not requested_image(job):
        event.accept()
    error = recorded_error(conf, str(job.id))
    if not error:
        event.accept()
    message = "strata: the container of job %s could not be set up on %s: %s" % (
        job.id, pbs.get_local_nodename(), error[len("strata: "):] if error.startswith("strata: ") else error)
    pbs.logjobmsg(str(job.id), "%s (the job script is not run)" % message)
    event.progname = "/bin/sh"
    event.argv[:] = ["/bin/sh", "-c", FAILED_SCRIPT, "strata", message]
    event.accept()


def execjob_end(event, conf):
    job = event.job
    if not requested_image(job):
        event.accept()
    status, _, message = run(conf, ["epilog/pbs.js"], {"PBS_JOBID": str(job.id)})
    if status != 0:
        offline_this_host(event, message)
    event.accept()


def known_jobs(event):
    """The jobs this MoM has: the periodic event's job list and the job files in mom_priv/jobs."""
    known = set()
    if event.type == pbs.EXECHOST_PERIODIC:
        known.update(str(jobid) for jobid in event.job_list.keys())
    conf = pbs.get_pbs_conf()
    home = conf.get("PBS_MOM_HOME") or conf.get("PBS_HOME")
    if home:
        jobs = os.path.join(home, "mom_priv", "jobs")
        if os.path.isdir(jobs):
            known.update(name[:-3] for name in os.listdir(jobs) if name.endswith(".JB"))
    return known


def reconcile(event, conf):
    jobs_dir = os.path.join(conf["runtime_dir"], "jobs")
    if not os.path.isdir(jobs_dir):
        event.accept()
    known = known_jobs(event)
    now = time.time()
    faults = []
    for jobid in sorted(os.listdir(jobs_dir)):
        if jobid in known or now - os.stat(os.path.join(jobs_dir, jobid)).st_mtime < conf["reconcile_grace_seconds"]:
            continue
        status, _, message = run(conf, ["epilog/pbs.js"], {"PBS_JOBID": jobid})
        if status == 0:
            pbs.logmsg(pbs.LOG_WARNING, "strata: removed the container of job %s, which this MoM no longer runs" % jobid)
        else:
            faults.append(message)
    if faults and event.type == pbs.EXECHOST_STARTUP:
        raise NodeFault("; ".join(faults))
    if faults:
        offline_this_host(event, "; ".join(faults))
    event.accept()


HANDLERS = {
    pbs.QUEUEJOB: queuejob,
    pbs.EXECJOB_BEGIN: execjob_begin,
    pbs.EXECJOB_LAUNCH: execjob_launch,
    pbs.EXECJOB_END: execjob_end,
    pbs.EXECHOST_STARTUP: reconcile,
    pbs.EXECHOST_PERIODIC: reconcile,
}


def main():
    event = pbs.event()
    handler = HANDLERS.get(event.type)
    if handler is None:
        event.accept()
    try:
        handler(event, settings())
    except NodeFault as fault:
        # Unhandled on purpose: a hook failure is what fail_action=offline_vnodes acts on.
        pbs.logmsg(pbs.LOG_ERROR, str(fault))
        raise
    event.accept()


# PBS's own hooks test the same (pbs_cgroups.PY): hook code runs as module 'builtins' in
# Python 3 and '__builtin__' in Python 2; a test for "__main__" is never true under PBS.
if __name__ in ("builtins", "__builtin__"):
    main()
