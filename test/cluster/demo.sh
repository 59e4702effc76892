#!/usr/bin/env bash
# The main job, end to end through real Slurm: start the 3-node test cluster (unless it is up),
# import a Debian image with Open MPI, mpi4py and numpy (built from Debian packages on first use),
# submit an MPI job across the 3 nodes with `sbatch --container-image` as an unprivileged user, and
# print every rank's answer and each node's set-up and teardown times.
# A cluster started here is stopped again at the end (STRATA_DEMO_KEEP=1 leaves it up).
# Root only. Needs a build (npm run build).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"
[ "$(id -u)" = 0 ] || die "must run as root"
CLI=$REPO/dist/bin/strata.js
[ -x "$CLI" ] || die "no build: run npm run build"

# The MPI image tree: Debian 12 with python3, numpy, Open MPI and mpi4py from Debian packages,
# built once per machine (a few minutes, with progress; cached under /var/cache/strata/rootfs).
tree=$("$REPO/test/images/mpi-rootfs.sh")

# The unprivileged user the job runs as, with a home directory and a supplementary group, as the
# end-to-end tests use (made on this machine when missing; the cluster's hosts share its accounts).
read -r user uid gid home _ < <("$here/test-user.sh")

started=0
if ! "$here/on.sh" head sinfo -h >/dev/null 2>&1; then
  "$here/up.sh"
  started=1
fi
stop() { [ "$started" = 1 ] && [ "${STRATA_DEMO_KEEP:-0}" != 1 ] && "$here/down.sh"; true; }
trap stop EXIT

if ! STRATA_CONFIG=$C/etc/strata.yaml "$CLI" resolve mpi:1 >/dev/null 2>&1; then
  say "importing $tree as mpi:1 (once per cluster)"
  STRATA_CONFIG=$C/etc/strata.yaml "$CLI" import "dir:$tree" --tag mpi:1 >/dev/null
fi

work=$C/work/demo
rm -rf "$work"
install -d -o "$uid" -g "$gid" "$work"

# Loop devices are global to the kernel: take the lock the test suites use while the job runs
# (unless the caller already holds it and says so with STRATA_MOUNT_LOCK_HELD=1).
if [ "${STRATA_MOUNT_LOCK_HELD:-0}" != 1 ]; then
  exec 9>/tmp/strata-mounttests.lock
  flock 9
fi
ranks=$((2 * NODES))
echo "\$ sbatch -N$NODES -n$ranks --container-image=mpi:1 job.sh   (as $user)"
cat >"$work/job.sh" <<'EOF'
#!/bin/sh
# Every rank: the sum of all ranks and a numpy vector sum, through MPI across the nodes.
srun --mpi=pmix python3 -c '
import socket, numpy
from mpi4py import MPI
comm = MPI.COMM_WORLD
rank, size = comm.Get_rank(), comm.Get_size()
total = comm.allreduce(rank, op=MPI.SUM)
vector = numpy.zeros(3)
comm.Allreduce(numpy.full(3, rank + 1.0), vector, op=MPI.SUM)
print(f"rank {rank}/{size} on {socket.gethostname()}: sum of ranks {total}, vector sum {vector.tolist()}")
' | sort -n -k2
EOF
chmod 0755 "$work/job.sh"
echo "--- job.sh ---"
cat "$work/job.sh"
submitted=$(cd "$work" && on_host head setpriv --reuid="$uid" --regid="$gid" --init-groups -- \
  env HOME="$home" USER="$user" LOGNAME="$user" sbatch -N"$NODES" -n"$ranks" --container-image=mpi:1 -o "$work/out.txt" job.sh)
job=${submitted##* }
echo "$submitted"

for _ in $(seq 600); do
  state=$(on_host head scontrol show job -o "$job" | grep -o 'JobState=[A-Z_]*' | cut -d= -f2)
  busy=$(on_host head squeue -h -j "$job" 2>/dev/null || true)
  case $state in COMPLETED | FAILED | CANCELLED | TIMEOUT | NODE_FAIL) [ -z "$busy" ] && break ;; esac
  sleep 0.2
done
echo "job $job: $state"
echo "--- output ---"
cat "$work/out.txt"
echo "--- per node (from each node's strata log) ---"
printf '%-6s %10s %11s\n' node "set-up" "teardown"
# Each node's log holds one JSON line per phase of the job with its duration (durationMs): read
# as JSON, whatever the order of its keys.
for n in $(node_names); do
  times=$(on_host "$n" cat /run/strata.log 2>/dev/null | node -e '
    const job = process.argv[1], ms = {};
    for (const line of require("fs").readFileSync(0, "utf8").split("\n")) {
      let entry;
      try { entry = JSON.parse(line); } catch { continue; }
      if (String(entry.job) === job && typeof entry.durationMs === "number") ms[entry.phase] = entry.durationMs;
    }
    console.log(`${ms.prolog ?? "-"} ${ms.epilog ?? "-"}`);' "$job")
  printf '%-6s %8s ms %8s ms\n' "$n" "${times%% *}" "${times##* }"
done
[ "$state" = COMPLETED ]
