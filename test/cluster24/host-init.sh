#!/bin/bash
# First process of a host of the Slurm 24.11 cluster, already in its own network, mount and UTS
# namespaces (see up.sh). Makes the Debian 13 root filesystem this host's "/" and stays alive as
# the holder of the namespaces; daemons and clients join with nsenter -t <pid>, which puts them in
# that root, so slurmd, slurmctld, munged, the prolog's mount/losetup and the job all come from
# trixie, as on a site that runs Debian 13.
#   host-init.sh HOST CLUSTER_DIR ROOTFS NODE_BINARY KEEP_PATH...
set -euo pipefail
host=$1 C=$2 rootfs=$3 node=$4
shift 4
keep_paths=("$C" "$@")
hostname "$host"

own=$C/hosts/$host
root=$own/root
mkdir -p "$root" "$own/upper" "$own/work" "$own/run" "$own/tmp"
# The cached rootfs is shared by every host and by later runs: it is the read-only lower of an
# overlay, and whatever a host writes (mount points, /etc/hostname, daemon files) goes to its upper.
mount -t overlay overlay -o "lowerdir=$rootfs,upperdir=$own/upper,workdir=$own/work" "$root"
mount -t proc proc "$root/proc"
# The machine's /sys (cgroup v1 is seen as on the machine) and /dev (loop devices are global).
mount --rbind /sys "$root/sys"
mount --rbind /dev "$root/dev"
# Names resolve from the cluster's hosts file only: the rootfs has no /etc/hosts, and its resolver
# (the machine's, copied by debootstrap) is unreachable from these network namespaces, so every
# lookup (munged's of its own name, slurmctld's of a credential's origin) would wait for DNS time-outs
# and stall slurmctld past MessageTimeout: steps then hang in COMPLETING.
cp "$C/etc/hosts" "$root/etc/hosts"
sed -i 's/^hosts:.*/hosts: files/' "$root/etc/nsswitch.conf"
: >"$root/etc/resolv.conf"
# Job users as a site's directory service would give them: the machine's ordinary accounts (uid
# and gid 1000 and up that the rootfs lacks by name), among them the tests' user
# (test/cluster/test-user.sh, made before the cluster starts), appended to the rootfs's own files in
# this host's upper; and the machine's /home, where their home directories are.
for db in passwd group; do
  add=$(awk -F: 'NR == FNR { have[$1] = 1; next } $3 >= 1000 && $3 != 65534 && !($1 in have)' "$root/etc/$db" "/etc/$db")
  [ -z "$add" ] || printf '%s\n' "$add" >>"$root/etc/$db"
done
mount --bind /home "$root/home"
# Private /run and /tmp, as on a separate machine.
mount --bind "$own/run" "$root/run"
mount --bind "$own/tmp" "$root/tmp"
chmod 1777 "$root/tmp"
mkdir -p "$root/run/lock"
# strata's entry points are #!/usr/bin/node, and trixie's node is not the supported line: bind a
# Node 22/24 binary there.
touch "$root/usr/bin/node"
mount --bind "$node" "$root/usr/bin/node"
# Paths every host sees at the same path as the machine: the cluster directory (store, config,
# logs, job output) and the repository (dist/: prolog, epilog, CLI).
for path in "${keep_paths[@]}"; do
  mkdir -p "$root$path"
  mount --bind "$path" "$root$path"
done

# Switch root and drop the machine's tree: nothing in this namespace then holds the machine's
# own mounts (a copy of an image mount here would keep its loop device alive).
mkdir -p "$root/.oldroot"
cd "$root"
pivot_root . .oldroot
cd /
umount -l /.oldroot
rmdir /.oldroot

echo $$ >"$C/hosts/$host/holder.pid"
echo "$host" >"$C/hosts/$host/ready"
exec sleep infinity
