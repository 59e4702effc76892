#!/usr/bin/env bash
# Run a command on a host of the test cluster, e.g.  on.sh head sbatch -N3 --wrap hostname
#                                                     on.sh n2 findmnt -R /run/strata
# (inside that host's network, mount and UTS namespaces, with SLURM_CONF pointing at the cluster).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"
[ $# -ge 2 ] || die "usage: on.sh HOST COMMAND [ARG...]   (hosts: $(host_names | tr '\n' ' '))"
host=$1; shift
on_host "$host" "$@"
