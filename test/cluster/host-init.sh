#!/bin/bash
# Runs as the first process of a cluster host, already inside its new network, mount and UTS
# namespaces (see up.sh): names the host, gives it a private /run and /tmp, then stays alive as
# the holder of those namespaces. Daemons and clients join it with nsenter -t <holder pid>.
set -euo pipefail
host=$1 C=$2
shift 2
# Paths every host must see at the same path as the machine does: the cluster directory, and the
# repository (its dist/ holds the prolog, epilog, CLI and plugin), wherever CI cloned it.
keep_paths=("$C" "$@")
hostname "$host"

# Drop this namespace's copies of the host's image mounts and namespace handles: a copy here would
# keep their superblocks (and loop devices) alive after the host unmounts them.
findmnt -rn -o TARGET,FSTYPE,SOURCE | tac | while read -r target fstype source; do
  case "$fstype:$source" in
    squashfs:* | overlay:* | erofs:* | nsfs:* | *:/dev/loop*) umount -l "$(printf '%b' "$target")" || true ;;
  esac
done

# Private /run and /tmp: bind the host's own directories over them, after binding back in every
# kept path that lives under one of them.
for dir in /run /tmp; do
  own="$C/hosts/$host/${dir#/}"
  for path in "${keep_paths[@]}"; do
    case "$path/" in
      "$dir"/*)
        keep="$own/${path#"$dir"/}"
        mkdir -p "$keep"
        mount --bind "$path" "$keep"
        ;;
    esac
  done
  mount --rbind "$own" "$dir"
done
chmod 1777 /tmp
# The cluster's names (up.sh writes the file); the machine's own /etc/hosts is not touched.
mount --bind "$C/etc/hosts" /etc/hosts
mkdir -p /run/lock

echo $$ >"$C/hosts/$host/holder.pid"
echo "$host" >"$C/hosts/$host/ready"
exec sleep infinity
