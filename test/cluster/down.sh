#!/usr/bin/env bash
# Remove every trace of the test cluster: processes, namespaces, mounts, loop devices, files.
# Safe to run any number of times, and after a half-failed up.sh: each step looks at what is
# actually there (network namespaces, pid files, /sys/block/loop*, /proc/self/mountinfo), not at
# a record of what should be there.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"

[ "$(id -u)" = 0 ] || die "must run as root"
case "$C" in /?*/?* | /tmp/?*) ;; *) die "refusing to remove suspicious cluster directory: '$C'" ;; esac
left=0

our_netns() { ip netns list 2>/dev/null | awk '{print $1}' | grep "^$NS-" || true; }

# 1. Processes: everything in our network namespaces (namespace holders, slurmctld, slurmd,
#    slurmstepd, job tasks, prologs) and our munged. Mount namespaces die with their last process,
#    taking their mounts with them.
our_pids() {
  local ns pid
  for ns in $(our_netns); do ip netns pids "$ns" 2>/dev/null; done
  for pid in $(cat "$C/munge/munged.pid" "$C"/hosts/*/holder.pid 2>/dev/null); do
    [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -e "$C" -e '^sleep' && echo "$pid"
  done
}
stop_all() {
  local signal=$1 pids
  pids=$(our_pids | sort -u | tr '\n' ' ')
  [ -n "${pids// /}" ] || return 0
  # shellcheck disable=SC2086
  kill "-$signal" $pids 2>/dev/null
  for _ in $(seq 50); do
    pids=$(for p in $pids; do [ -d "/proc/$p" ] && echo "$p"; done | tr '\n' ' ')
    [ -z "${pids// /}" ] && return 0
    sleep 0.1
  done
  return 1
}
if ! stop_all TERM && ! stop_all KILL; then
  say "processes still alive: $(our_pids | tr '\n' ' ')"
  left=1
fi

# 2. Loop devices whose backing file is ours: autoclear frees them once the namespaces holding
#    their mounts are gone; detach what is left (e.g. attached with losetup, without autoclear).
our_loops() {
  local f
  for f in /sys/block/loop*/loop/backing_file; do
    [ -r "$f" ] || continue
    case "$(cat "$f" 2>/dev/null)" in "$C"/*) f=${f#/sys/block/}; echo "/dev/${f%%/*}" ;; esac
  done
}
for _ in $(seq 30); do [ -z "$(our_loops)" ] && break; sleep 0.1; done
for dev in $(our_loops); do
  say "detaching leftover loop device $dev ($(cat "/sys/block/${dev#/dev/}/loop/backing_file"))"
  losetup -d "$dev" || left=1
done

# 3. Network namespaces (the veth pairs and the bridge go with them).
for ns in $(our_netns); do
  ip netns del "$ns" || { say "could not delete network namespace $ns"; left=1; }
done

# 4. Mounts on this host under the cluster directory (none are made by up.sh; be sure anyway).
for target in $(findmnt -rn -o TARGET | grep -e "^$C/" -e "^$C\$" | sort -r); do
  say "unmounting leftover mount $target"
  umount "$target" 2>/dev/null || umount -l "$target" || left=1
done

# 5. Files, never crossing into a mount; the fake GPUs in the host's /dev.
rm -rf "$GPU_DEV"
if [ -e "$C" ]; then
  if findmnt -rn -o TARGET | grep -q -e "^$C/" -e "^$C\$"; then
    say "not removing $C: something is still mounted below it"
    left=1
  else
    rm -rf --one-file-system "$C" || left=1
  fi
fi

if [ "$left" = 0 ]; then say "down: nothing left"; else say "down: some traces are left (see above)"; fi
exit "$left"
