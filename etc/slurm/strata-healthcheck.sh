#!/bin/sh
# Slurm HealthCheckProgram running `strata doctor`. slurmd ignores a health check's exit status:
# the program must drain the node itself. This one drains it when doctor finds it unfit (exit 1),
# with the first failed check as the reason, and never resumes a node (an admin does, after the
# fix). slurm.conf:
#   HealthCheckProgram=/usr/local/lib/strata/strata-healthcheck.sh  (install -m 755 etc/slurm/strata-healthcheck.sh there)
#   HealthCheckInterval=300
#   HealthCheckNodeState=ANY,CYCLE
# Environment (optional): STRATA (the strata command), SCONTROL, STRATA_CONFIG, SLURM_CONF.
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH
STRATA=${STRATA:-/usr/local/bin/strata}
SCONTROL=${SCONTROL:-scontrol}
node=${SLURMD_NODENAME:-$(hostname -s)}

report=$("$STRATA" doctor 2>&1)
status=$?
[ "$status" -eq 0 ] && exit 0
# "FAIL  store  /lustre/strata does not exist; fix: ..." -> "strata doctor: store: /lustre/strata does not exist"
reason=$(printf '%s\n' "$report" | sed -n 's/^FAIL  *\([^ ]*\)  *\(.*\)$/\1: \2/p' | head -n 1 | sed 's/; fix: .*//' | cut -c 1-200)
[ -n "$reason" ] || reason=$(printf '%s\n' "$report" | tail -n 1 | cut -c 1-200)
logger -t strata -p daemon.err "health check failed on $node: $reason" 2>/dev/null || true
exec "$SCONTROL" update NodeName="$node" State=DRAIN Reason="strata doctor: $reason"
