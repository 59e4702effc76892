#!/usr/bin/env bash
# Build (once per machine) the Debian 13 root filesystem the Slurm 24.11 test cluster runs from,
# and print its path. Cached under /var/cache/strata/rootfs/<key>: the key names everything that
# goes into it, so a change of package list gets a new directory and old ones are never reused.
# Built in a temporary directory and renamed into place, so an interrupted build is never taken for
# a finished one; a lock keeps two concurrent CI jobs from building it twice.
#
# Environment: STRATA_ROOTFS_CACHE (/var/cache/strata/rootfs), STRATA_DEBIAN_MIRROR.
set -euo pipefail

# Bump the trailing number when the package list or the steps below change.
readonly KEY=trixie-slurm24.11-2
readonly PACKAGES=slurmd,slurmctld,slurm-client,munge,libslurm-dev,gcc,make,libc6-dev,iproute2,procps
CACHE=${STRATA_ROOTFS_CACHE:-/var/cache/strata/rootfs}
MIRROR=${STRATA_DEBIAN_MIRROR:-http://deb.debian.org/debian}
ROOT=$CACHE/$KEY

say() { printf 'rootfs: %s\n' "$*" >&2; }
die() { printf 'rootfs: error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (debootstrap)"
if [ -f "$ROOT/.strata-complete" ]; then echo "$ROOT"; exit 0; fi

command -v debootstrap >/dev/null || die "missing tool: debootstrap (Debian: apt-get install debootstrap)"
install -d -m 0755 "$CACHE"
exec 9>"$CACHE/.lock"
flock 9
# Someone else may have finished it while we waited for the lock.
if [ -f "$ROOT/.strata-complete" ]; then echo "$ROOT"; exit 0; fi

tmp=$CACHE/.build-$KEY
rm -rf --one-file-system "$tmp"
say "building $ROOT (Debian trixie + Slurm 24.11; a few minutes, once per machine)"
start=$SECONDS
# debootstrap's own "I: <Phase> <package>" lines are the progress report: the first line of each
# phase and every 50th after it (there are ~200 packages per phase); the full log stays in the
# build directory on failure. minbase + --include keeps the download to what the daemons and the
# plugin build need.
if ! debootstrap --variant=minbase --include="$PACKAGES" trixie "$tmp" "$MIRROR" 2>&1 |
  awk 'sub(/^I: /, "") { if ($1 != phase) { phase = $1; n = 0; print "rootfs:   " $0 } else if (++n % 50 == 0) print "rootfs:   " $0 " (" n " so far)"; fflush() }' >&2; then
  die "debootstrap failed (log: $tmp/debootstrap/debootstrap.log)"
fi
[ -x "$tmp/usr/sbin/slurmd" ] || die "debootstrap finished without slurmd (log: $tmp/debootstrap/debootstrap.log)"
# The apt caches are not needed to run the daemons; the rootfs is ~3x smaller without them.
rm -rf "$tmp"/var/cache/apt/archives/*.deb "$tmp"/var/lib/apt/lists/*
date -u +%FT%TZ >"$tmp/.strata-complete"
mv -T "$tmp" "$ROOT"
say "built in $((SECONDS - start)) s: $ROOT ($(chroot "$ROOT" dpkg-query -W -f '${Version}' slurmd))"
echo "$ROOT"
