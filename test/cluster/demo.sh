#!/usr/bin/env bash
# The main job, end to end through real Slurm: start the 3-node test cluster (unless it is up),
# import a small image, submit a containerized multi-node job with `sbatch --container-image` as an
# unprivileged user, and print the job's output and each node's set-up and teardown times.
# A cluster started here is stopped again at the end (STRATA_DEMO_KEEP=1 leaves it up).
# Root only. Needs a build (npm run build).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"
[ "$(id -u)" = 0 ] || die "must run as root"
CLI=$REPO/dist/bin/strata.js
[ -x "$CLI" ] || die "no build: run npm run build"

started=0
if ! "$here/on.sh" head sinfo -h >/dev/null 2>&1; then
  "$here/up.sh"
  started=1
fi
stop() { [ "$started" = 1 ] && [ "${STRATA_DEMO_KEEP:-0}" != 1 ] && "$here/down.sh"; true; }
trap stop EXIT

# A small image: busybox, and an os-release that says where it came from.
tree=$C/image-trees/demo
rm -rf "$tree"
mkdir -p "$tree/bin" "$tree/etc" "$tree/tmp"
chmod 1777 "$tree/tmp"
cp /bin/busybox "$tree/bin/busybox"
for applet in $(/bin/busybox --list); do [ "$applet" = busybox ] || ln -sf busybox "$tree/bin/$applet"; done
printf 'PRETTY_NAME="strata demo image (busybox %s)"\n' "$(/bin/busybox | head -1 | awk '{print $2}')" >"$tree/etc/os-release"
printf 'root:x:0:0::/root:/bin/sh\nnobody:x:65534:65534::/nonexistent:/bin/sh\n' >"$tree/etc/passwd"
STRATA_CONFIG=$C/etc/strata.yaml "$CLI" import "dir:$tree" --tag demo:1 >/dev/null

work=$C/work/demo
rm -rf "$work"
install -d -o nobody -g nogroup "$work"

# Loop devices are global to the kernel: take the lock the test suites use while the job runs
# (unless the caller already holds it and says so with STRATA_MOUNT_LOCK_HELD=1).
if [ "${STRATA_MOUNT_LOCK_HELD:-0}" != 1 ]; then
  exec 9>/tmp/strata-mounttests.lock
  flock 9
fi
echo "\$ sbatch -N$NODES --container-image=demo:1 --container-batch=host job.sh   (as nobody)"
cat >"$work/job.sh" <<'EOF'
#!/bin/sh
srun -l sh -c 'echo "$(hostname): $(. /etc/os-release; echo "$PRETTY_NAME"), uid $(id -u), in $(pwd)"' | sort
EOF
chmod 0755 "$work/job.sh"
submitted=$(cd "$work" && on_host head setpriv --reuid=65534 --regid=65534 --clear-groups -- \
  sbatch -N"$NODES" --container-image=demo:1 --container-batch=host -o "$work/out.txt" job.sh)
job=${submitted##* }
echo "$submitted"

for _ in $(seq 300); do
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
for n in $(node_names); do
  times=$(on_host "$n" cat /run/strata.log 2>/dev/null | grep "\"job\":\"$job\"" |
    sed -n 's/.*"durationMs":\([0-9]*\).*"phase":"\([a-z]*\)".*/\2 \1/p')
  printf '%-6s %8s ms %8s ms\n' "$n" "$(echo "$times" | awk '$1=="prolog"{print $2}')" "$(echo "$times" | awk '$1=="epilog"{print $2}')"
done
[ "$state" = COMPLETED ]
