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
# Fake GPUs' device nodes (up.sh): one directory of the machine's /dev per cluster, so that two
# clusters side by side (another STRATA_CLUSTER_NS) do not remove each other's.
GPU_DEV=/dev/$NS-cluster-gpu
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

# ---- start-up steps both test clusters share (test/cluster/up.sh, test/cluster24/up.sh) ----------

# The network: one namespace per host, each wired by a veth pair to a bridge in "$NS-fabric".
make_fabric() {
  local h ns
  ip netns add "$NS-fabric"
  ip -n "$NS-fabric" link add br0 type bridge
  ip -n "$NS-fabric" link set br0 up
  ip -n "$NS-fabric" link set lo up
  for h in $(host_names); do
    ns=$(netns_of "$h")
    ip netns add "$ns"
    ip -n "$NS-fabric" link add "v-$h" type veth peer name eth0 netns "$ns"
    ip -n "$NS-fabric" link set "v-$h" master br0 up
    ip -n "$ns" link set lo up
    ip -n "$ns" addr add "$(host_ip "$h")/24" dev eth0
    ip -n "$ns" link set eth0 up
  done
}

# Waits for every host's holder (host-init.sh) to say it is ready.
wait_for_hosts() {
  local h
  for h in $(host_names); do
    for _ in $(seq 100); do [ -s "$C/hosts/$h/ready" ] && break; sleep 0.05; done
    [ -s "$C/hosts/$h/ready" ] || die "host $h did not come up (see $C/log/host-$h.log)"
  done
}

# Starts slurmctld on head and slurmd on every node, and waits until all nodes are idle.
start_slurm() {
  local n idle=
  say "starting slurmctld on head"
  on_host head slurmctld -f "$C/etc/slurm.conf" </dev/null >>"$C/log/slurmctld.log" 2>&1
  for n in $(node_names); do
    say "starting slurmd on $n"
    on_host "$n" slurmd -f "$C/etc/slurm.conf" -N "$n" </dev/null >>"$C/log/slurmd-$n.log" 2>&1
  done
  say "waiting for $NODES nodes to be idle"
  for _ in $(seq 120); do
    idle=$(on_host head sinfo -h -N -o '%T' 2>/dev/null | grep -c '^idle$' || true)
    [ "$idle" = "$NODES" ] && break
    sleep 0.5
  done
  [ "$idle" = "$NODES" ] || { on_host head sinfo -N >&2 || true; die "nodes did not become idle"; }
}
