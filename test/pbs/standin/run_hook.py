# Plays the PBS daemon (server or MoM) that runs one hook event: sets up the stand-in `pbs`
# module from an event description (JSON), runs the hook script as PBS does (as __main__, with
# `pbs` importable), and writes what PBS would then do (JSON): the outcome, the reject message,
# whether the job was deleted, its Variable_List, and the vnodes' states.
#
#   python3 run_hook.py HOOK.py EVENT.json RESULT.json
#
# An exception escaping the hook is a hook failure: PBS rejects the event and applies the hook's
# fail_action, where the event allows it (offline_vnodes: execjob_begin, execjob_prologue and
# exechost_startup only).

import json
import runpy
import sys
import traceback

import pbs

hook, event_file, result_file = sys.argv[1:4]
with open(event_file) as handle:
    spec = json.load(handle)
pbs.hook_config_filename = spec.get("hook_config")
pbs._local_node = spec.get("local_node", "")
pbs._pbs_conf = spec.get("pbs_conf", {})
pbs._event = event = pbs.Event(spec)

failure = None
try:
    runpy.run_path(hook, run_name="__main__")
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

job = event._job
with open(result_file, "w") as handle:
    json.dump({
        "outcome": outcome,
        "message": event.message,
        "failure": failure,
        "job": None if job is None else {"deleted": job.deleted, "rerun": job.rerun_requested, "Variable_List": job.Variable_List},
        "vnodes": dict((name, {"state": v.state, "comment": v.comment}) for name, v in event.vnode_list.items()),
        "log": pbs.log,
    }, handle, indent=2)
