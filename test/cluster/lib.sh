# Shared settings for the one-machine Slurm test cluster (sourced by up.sh, down.sh, on.sh).
#
# Layout: one head (slurmctld, and where client commands run) and N compute nodes, each a "host"
# made of a network namespace (ip netns, addresses only inside), and a mount + UTS namespace held
# open by a small holder process, with its own /run and /tmp. The hosts are wired through a bridge
# in a separate "fabric" network namespace. Everything else lives under $STRATA_CLUSTER_DIR, which
# every host sees at the same path, so `down` can remove every trace.

C=${STRATA_CLUSTER_DIR:-/tmp/strata-cluster}
NS=${STRATA_CLUSTER_NS:-strata}          # network namespace prefix: strata-head, strata-n1, ...
NODES=${STRATA_CLUSTER_NODES:-3}
NET=${STRATA_CLUSTER_NET:-10.213.77}     # /24; head is .1, node k is .(10+k)
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

node_names() { local k; for ((k = 1; k <= NODES; k++)); do printf 'n%d\n' "$k"; done; }
host_names() { printf 'head\n'; node_names; }
host_ip() { case $1 in head) echo "$NET.1" ;; n*) echo "$NET.$((10 + ${1#n}))" ;; esac; }
netns_of() { echo "$NS-$1"; }
holder_pid() { cat "$C/hosts/$1/holder.pid" 2>/dev/null; }

say() { printf 'cluster: %s\n' "$*" >&2; }
die() { printf 'cluster: error: %s\n' "$*" >&2; exit 1; }

# Run a command on a host (inside its network, mount and UTS namespaces), with SLURM_CONF set.
on_host() {
  local host=$1; shift
  local pid; pid=$(holder_pid "$host") || true
  [ -n "$pid" ] && [ -d "/proc/$pid" ] || die "host $host is not running (no holder process)"
  # Keep the caller's working directory when the host can see it (sbatch submits from it).
  local dir=/
  nsenter -t "$pid" -m -- test -d "$PWD" && dir=$PWD
  nsenter -t "$pid" -n -m -u -- /usr/bin/env -C "$dir" SLURM_CONF="$C/etc/slurm.conf" "$@"
}
