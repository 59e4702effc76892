# A minimal stand-in for PBS's `pbs` hook module (no PBS server package exists here), following
# the documented hook API (openpbs doc/man1/pbs_module.7B, pbs_hook_attributes.7B) and what a
# real OpenPBS 23.06 did: pbs.event() with .type, .hook_name, .job, .job_list, .vnode_list,
# .requestor, .accept(), .reject(msg) (both raise SystemExit), and for execjob_launch .progname,
# .argv, .env; job.id, .euser, .egroup, .exec_host, .Resource_List, .Variable_List,
# .in_ms_mom(), .delete(), .rerun(); vnode .state, .comment; pbs.logmsg, pbs.logjobmsg,
# pbs.get_local_nodename(), pbs.get_pbs_conf(), pbs.hook_config_filename, the event and ND_*
# constants. Variable_List is a pbs_env: a missing key raises KeyError; a missing Resource_List
# entry reads as None. State comes from run_hook.py, which plays the daemon that runs the hook
# (and decides what reaches a MoM hook: see there).

QUEUEJOB = 1
EXECJOB_BEGIN = 2
EXECJOB_PROLOGUE = 3
EXECJOB_EPILOGUE = 4
EXECJOB_END = 5
EXECJOB_LAUNCH = 6
EXECHOST_PERIODIC = 7
EXECHOST_STARTUP = 8
MOM_EVENTS = (EXECJOB_BEGIN, EXECJOB_PROLOGUE, EXECJOB_EPILOGUE, EXECJOB_END, EXECJOB_LAUNCH, EXECHOST_PERIODIC, EXECHOST_STARTUP)
EVENT_TYPES = {
    "queuejob": QUEUEJOB, "execjob_begin": EXECJOB_BEGIN, "execjob_prologue": EXECJOB_PROLOGUE,
    "execjob_epilogue": EXECJOB_EPILOGUE, "execjob_end": EXECJOB_END, "execjob_launch": EXECJOB_LAUNCH,
    "exechost_periodic": EXECHOST_PERIODIC, "exechost_startup": EXECHOST_STARTUP,
}

LOG_DEBUG = 4
LOG_WARNING = 5
LOG_ERROR = 6
EVENT_DEBUG = 8

ND_FREE = "free"
ND_OFFLINE = "offline"
ND_DOWN = "down"

hook_config_filename = None
_local_node = ""
_pbs_conf = {}
_event = None
log = []


class EventIncompatibleError(Exception):
    pass


class _Resources(dict):
    """Resource_List: an unset resource reads as None, as in PBS."""

    def __getitem__(self, name):
        return dict.get(self, name)


class pbs_env(dict):
    """Variable_List and the launch environment: a plain mapping, so a missing key raises KeyError."""


class Job(object):
    def __init__(self, spec):
        self.id = spec["id"]
        self.euser = spec.get("euser")
        self.egroup = spec.get("egroup")
        self.exec_host = spec.get("exec_host")
        self.Resource_List = _Resources(spec.get("Resource_List", {}))
        self.Variable_List = pbs_env(spec.get("Variable_List", {}))
        self._ms = spec.get("in_ms_mom", True)
        self.deleted = False
        self.rerun_requested = False

    def in_ms_mom(self):
        return self._ms

    def delete(self):
        self.deleted = True

    def rerun(self):
        self.rerun_requested = True


class Vnode(object):
    def __init__(self, name):
        self.name = name
        self.state = ND_FREE
        self.comment = None


class Event(object):
    def __init__(self, spec):
        self.type = EVENT_TYPES[spec["type"]]
        self.hook_name = spec.get("hook_name", "strata")
        self._job = Job(spec["job"]) if "job" in spec else None
        self._job_list = dict((jobid, Job(dict(job, id=jobid))) for jobid, job in spec.get("job_list", {}).items()) if "job_list" in spec else None
        # Who made the request (queuejob: who ran qsub), as PBS gives it: a user name.
        self.requestor = spec.get("requestor")
        self.vnode_list = dict((name, Vnode(name)) for name in spec.get("vnodes", []))
        # execjob_launch: what the MoM is about to run (the job shell, its argv, the job's environment).
        launch = spec.get("launch") or {}
        self.progname = launch.get("progname")
        self.argv = list(launch["argv"]) if "argv" in launch else None
        self.env = pbs_env(launch.get("env", {})) if launch else None
        self.outcome = None
        self.message = None

    @property
    def job(self):
        if self._job is None:
            raise EventIncompatibleError("job")
        return self._job

    @property
    def job_list(self):
        if self._job_list is None:
            raise EventIncompatibleError("job_list")
        return self._job_list

    def accept(self):
        self.outcome = "accept"
        raise SystemExit(0)

    def reject(self, message=None):
        self.outcome = "reject"
        self.message = message
        raise SystemExit(1)


def event():
    return _event


def logmsg(level, message):
    log.append(message)


def logjobmsg(jobid, message):
    log.append("%s: %s" % (jobid, message))


def get_local_nodename():
    return _local_node


def get_pbs_conf():
    return dict(_pbs_conf)


def get_hook_config_file():
    return hook_config_filename
