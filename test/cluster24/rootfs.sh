#!/usr/bin/env bash
# Build (once per machine) the Debian 13 root filesystem the Slurm 24.11 test cluster runs from,
# and print its path (cached under /var/cache/strata/rootfs/<key>; see test/images/debian-rootfs.sh).
# Environment: STRATA_ROOTFS_CACHE, STRATA_DEBIAN_MIRROR.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# Bump the trailing number when the package list changes.
readonly KEY=trixie-slurm24.11-3
# libpmix-dev: Slurm's mpi/pmix dlopens pmix2/lib/libpmix.so, which only the -dev package has.
# automake: libltdl-dev (libpmix-dev -> libhwloc-dev -> libltdl-dev) depends on the virtual
# automake-1.17, which debootstrap's resolver does not pick a provider for (as in mpi-rootfs.sh).
readonly PACKAGES=slurmd,slurmctld,slurm-client,munge,libslurm-dev,libpmix-dev,automake,gcc,make,libc6-dev,iproute2,procps
exec "$here/../images/debian-rootfs.sh" "$KEY" trixie "$PACKAGES" usr/sbin/slurmd
