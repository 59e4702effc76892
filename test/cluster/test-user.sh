#!/usr/bin/env bash
# The account test jobs run as (test/e2e/cluster.ts, demo.sh): an ordinary user, strata-e2e, with
# its own group, a home directory under /home and one supplementary group, strata-e2e-extra, as a
# site's users have. Made on this machine when missing, and completed when a part is missing (the
# group membership, the home directory); otherwise left as it is, so any number of runs (and two
# clusters at once) share it. It is not removed afterwards.
#
# Identity reaches the cluster hosts without copying: test/cluster's hosts share this machine's
# /etc/passwd, /etc/group and /home (only /etc/hosts, /run and /tmp are their own), and slurmd
# resolves users through the same NSS; test/cluster24's hosts copy the ordinary accounts into their
# root filesystem at start-up (its host-init.sh).
#
# Prints: NAME UID GID HOME SUPPLEMENTARY_GROUP SUPPLEMENTARY_GID
set -euo pipefail
name=strata-e2e
extra=strata-e2e-extra
home=/home/$name

[ "$(id -u)" = 0 ] || { echo "test-user.sh: must run as root (useradd)" >&2; exit 1; }
# Two test runs may get here at once: a lost race ("already exists") is fine when the result is there.
getent group "$extra" >/dev/null || groupadd "$extra" 2>/dev/null || getent group "$extra" >/dev/null
if ! id "$name" >/dev/null 2>&1; then
  useradd --create-home --home-dir "$home" --user-group --groups "$extra" --shell /bin/sh \
    --comment "strata end-to-end tests" "$name" 2>/dev/null || id "$name" >/dev/null
fi
id -nG "$name" | tr ' ' '\n' | grep -qx "$extra" || usermod -a -G "$extra" "$name"
uid=$(id -u "$name") gid=$(id -g "$name")
home=$(getent passwd "$name" | cut -d: -f6)
[ -d "$home" ] || install -d -m 0700 -o "$uid" -g "$gid" "$home"
echo "$name $uid $gid $home $extra $(getent group "$extra" | cut -d: -f3)"
