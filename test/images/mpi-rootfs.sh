#!/usr/bin/env bash
# Build (once per machine) the Debian 12 tree of the MPI test and demo image and print its path:
# python3, numpy, Debian's Open MPI (with mpicc, so jobs can compile MPI programs inside) and
# mpi4py, all from Debian packages. Import it with `strata import dir:<path> --tag mpi:1`.
# Cached under /var/cache/strata/rootfs/<key> (see debian-rootfs.sh); the first build downloads
# ~150 MB and takes a few minutes, with one progress line per debootstrap phase.
# Environment: STRATA_ROOTFS_CACHE, STRATA_DEBIAN_MIRROR.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# Bump the trailing number when the package list changes.
readonly KEY=bookworm-mpi-1
# automake: libltdl-dev (pulled in by libopenmpi-dev) depends on the virtual automake-1.16, which
# debootstrap's resolver does not pick a provider for.
readonly PACKAGES=python3,python3-numpy,python3-mpi4py,openmpi-bin,libopenmpi-dev,gcc,libc6-dev,automake
exec "$here/debian-rootfs.sh" "$KEY" bookworm "$PACKAGES" usr/bin/mpicc
