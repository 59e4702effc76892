# Plays the PBS daemon (server or MoM) that runs one hook event, the way a real OpenPBS 23.06 does:
# sets up the stand-in `pbs` module from an event description (JSON), runs the hook script as PBS
# does, and writes what PBS would then do (JSON): the outcome, the reject message, whether the job
# was deleted, its Variable_List, the vnodes' states, and for execjob_launch what the job's own
# process then printed and returned.
#
#   python3 run_hook.py HOOK.py EVENT.json RESULT.json
#
# What the real daemons do, and this one too:
# - the hook's __name__ is 'builtins', never '__main__' (PBS runs hook code in a namespace holding
#   only __builtins__);
# - its environment is the daemon's (PATH=/bin:/usr/bin: the caller passes it) and its working
#   directory is PBS_HOME/mom_priv/hooks/tmp (server_priv/hooks/tmp for server events);
# - a MoM event gets only the custom resources whose resourcedef entry has flag m (the server
#   sends no other); built-in resources (select, ncpus, walltime, ...) always arrive; exec_host is
#   not set at the MoM; Variable_List always arrives;
# - an exception escaping the hook is a hook failure: PBS rejects the event and applies the
#   hook's fail_action, where the event allows it (offline_vnodes: execjob_begin,
#   execjob_prologue and exechost_startup only);
# - after an accepted execjob_launch the MoM runs event.progname with event.argv and event.env,
#   as the job's user, stdin the job script, stdout/stderr the job's output and error files.

import builtins
import json
import os
import pwd
import subprocess
import sys
import traceback

# The pbs module is importable in a hook as in PBS, without PYTHONPATH in the environment the
# hook passes on to its children.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True
import pbs  # noqa: E402

hook, event_file, result_file = sys.argv[1:4]
with open(event_file) as handle:
    spec = json.load(handle)
pbs.hook_config_filename = spec.get("hook_config")
pbs._local_node = spec.get("local_node", "")
pbs._pbs_conf = spec.get("pbs_conf", {})
mom_event = pbs.EVENT_TYPES[spec["type"]] in pbs.MOM_EVENTS


def as_sent(job):
    """A job's attributes as the server sends them to a MoM."""
    if not mom_event or job is None:
        return job
    flags = spec.get("resourcedef", {})
    resources = dict((name, value) for name, value in job.get("Resource_List", {}).items() if name not in flags or "m" in flags[name])
    return dict(job, Resource_List=resources, exec_host=None)


if "job" in spec:
    spec["job"] = as_sent(spec["job"])
pbs._event = event = pbs.Event(spec)

home = spec.get("pbs_home")
if home:
    workdir = os.path.join(home, "mom_priv" if mom_event else "server_priv", "hooks", "tmp")
    if not os.path.isdir(workdir):
        os.makedirs(workdir)
    os.chdir(workdir)

failure = None
try:
    with open(hook) as source:
        code = compile(source.read(), hook, "exec")
    # As pbs_python_ext_namespace_init (openpbs src/lib/Libpython/pbs_python_external.c): a fresh
    # namespace holding only __builtins__, so __name__ resolves to the builtins module's name.
    exec(code, {"__builtins__": builtins})
    outcome = "accept"  # a hook that returns without a verdict accepts
except SystemExit:
    outcome = event.outcome or "accept"
except Exception:
    failure = traceback.format_exc()
    outcome = "hook-error"
    if "offline_vnodes" in spec.get("fail_action", []) and event.type in (pbs.EXECJOB_BEGIN, pbs.EXECJOB_PROLOGUE, pbs.EXECHOST_STARTUP):
        for vnode in event.vnode_list.values():
            vnode.state = pbs.ND_OFFLINE
            vnode.comment = "offlined by hook '%s' due to hook error" % event.hook_name


def launch(job):
    """What the MoM does after execjob_launch accepts: run the job's program as its user."""
    user = pwd.getpwnam(job.euser)

    def become_user():
        os.setgroups([])
        os.setgid(user.pw_gid)
        os.setuid(user.pw_uid)

    with open(spec["launch"]["script"], "rb") as script:
        child = subprocess.Popen(event.argv, executable=event.progname, stdin=script, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 env=dict(event.env), cwd="/", preexec_fn=become_user, close_fds=True)
        out, err = child.communicate()
    return {"status": child.returncode, "stdout": out.decode("utf-8", "replace"), "stderr": err.decode("utf-8", "replace")}


job = event._job
with open(result_file, "w") as handle:
    json.dump({
        "outcome": outcome,
        "message": event.message,
        "failure": failure,
        "job": None if job is None else {"deleted": job.deleted, "rerun": job.rerun_requested, "Variable_List": job.Variable_List},
        "vnodes": dict((name, {"state": v.state, "comment": v.comment}) for name, v in event.vnode_list.items()),
        "log": pbs.log,
        "launched": launch(job) if event.type == pbs.EXECJOB_LAUNCH and outcome == "accept" else None,
    }, handle, indent=2)
