#!/usr/bin/env bash
# Build (once per machine) a Debian root filesystem with debootstrap and print its path. Shared by
# the Slurm 24.11 test cluster (test/cluster24/rootfs.sh) and the MPI test image (mpi-rootfs.sh).
#   debian-rootfs.sh KEY SUITE PACKAGES CHECK
# KEY names the directory under the cache (/var/cache/strata/rootfs/KEY): it must change whenever
# SUITE, PACKAGES or what the caller does with the tree changes, so an old tree is never reused for
# a new list. PACKAGES is debootstrap's comma-separated --include list; CHECK is a path inside the
# tree that must exist afterwards (a tool the caller needs). The tree is built in a temporary
# directory and renamed into place, so an interrupted build is never taken for a finished one; a
# lock keeps two concurrent runs from building it twice. A finished tree has /.strata-complete.
#
# Environment: STRATA_ROOTFS_CACHE (/var/cache/strata/rootfs), STRATA_DEBIAN_MIRROR (default: the
#   machine's own Debian mirror from its apt sources, else http://deb.debian.org/debian).
set -euo pipefail
[ $# = 4 ] || { echo "usage: $0 KEY SUITE PACKAGES CHECK" >&2; exit 2; }
KEY=$1 SUITE=$2 PACKAGES=$3 CHECK=$4
CACHE=${STRATA_ROOTFS_CACHE:-/var/cache/strata/rootfs}
ROOT=$CACHE/$KEY

say() { printf 'rootfs: %s\n' "$*" >&2; }
die() { printf 'rootfs: error: %s\n' "$*" >&2; exit 1; }

# The first Debian archive the machine's apt uses (deb822 .sources or one-line .list), so the
# build goes through whatever mirror or proxy the site has set up.
machine_mirror() {
  local uri
  uri=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '/^URIs:/ && $2 ~ /\/debian\/?$/ { print $2; exit }')
  [ -n "$uri" ] || uri=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
    awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\// && $i ~ /\/debian\/?$/) { print $i; exit } }')
  echo "${uri:-http://deb.debian.org/debian}"
}

[ "$(id -u)" = 0 ] || die "must run as root (debootstrap)"
if [ -f "$ROOT/.strata-complete" ]; then echo "$ROOT"; exit 0; fi

command -v debootstrap >/dev/null || die "missing tool: debootstrap (Debian: apt-get install debootstrap)"
MIRROR=${STRATA_DEBIAN_MIRROR:-$(machine_mirror)}
install -d -m 0755 "$CACHE"
exec 9>"$CACHE/.lock-$KEY"
flock 9
# Someone else may have finished it while we waited for the lock.
if [ -f "$ROOT/.strata-complete" ]; then echo "$ROOT"; exit 0; fi

tmp=$CACHE/.build-$KEY
rm -rf --one-file-system "$tmp"
say "building $ROOT (Debian $SUITE from $MIRROR; a few minutes, once per machine)"
start=$SECONDS
# debootstrap's own "I: <Phase> <package>" lines are the progress report: the first line of each
# phase and every 50th after it (the "Validating" line after each "Retrieving" one is skipped) (there are ~200 packages per phase); the full log stays in the
# build directory on failure. minbase + --include keeps the download to what the caller needs.
if ! debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$tmp" "$MIRROR" 2>&1 |
  awk 'sub(/^I: /, "") && !/^Validating / { if ($1 != phase) { phase = $1; n = 0; print "rootfs:   " $0 } else if (++n % 50 == 0) print "rootfs:   " $0 " (" n " so far)"; fflush() }' >&2; then
  die "debootstrap failed (log: $tmp/debootstrap/debootstrap.log)"
fi
# Checked inside the tree: Debian's alternatives are absolute links (/usr/bin/mpicc -> /etc/alternatives/...).
chroot "$tmp" /usr/bin/test -e "/$CHECK" || die "debootstrap finished without $CHECK (log: $tmp/debootstrap/debootstrap.log)"
# The apt caches are not needed to run anything; the tree is ~3x smaller without them.
rm -rf "$tmp"/var/cache/apt/archives/*.deb "$tmp"/var/lib/apt/lists/*
date -u +%FT%TZ >"$tmp/.strata-complete"
mv -T "$tmp" "$ROOT"
say "built in $((SECONDS - start)) s: $ROOT"
echo "$ROOT"
