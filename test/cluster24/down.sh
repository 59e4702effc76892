#!/usr/bin/env bash
# test/cluster/down.sh for the Slurm 24.11 cluster (its directory and namespaces: see env.sh).
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=env.sh
. "$here/env.sh"
exec "$here/../cluster/down.sh" "$@"
