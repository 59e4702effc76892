#!/usr/bin/env bash
# Build (once per machine) the Debian 13 root filesystem the Slurm 24.11 test cluster runs from,
# and print its path (cached under /var/cache/strata/rootfs/<key>; see test/images/debian-rootfs.sh).
# Environment: STRATA_ROOTFS_CACHE, STRATA_DEBIAN_MIRROR.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# Bump the trailing number when the package list changes.
readonly KEY=trixie-slurm24.11-2
readonly PACKAGES=slurmd,slurmctld,slurm-client,munge,libslurm-dev,gcc,make,libc6-dev,iproute2,procps
exec "$here/../images/debian-rootfs.sh" "$KEY" trixie "$PACKAGES" usr/sbin/slurmd
