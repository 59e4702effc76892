# Settings of the Slurm 24.11 test cluster, sourced before test/cluster/lib.sh: its own directory,
# network namespace prefix and subnet, so that it can run next to the 22.05 cluster (strata-*,
# /tmp/strata-cluster, 10.213.77.0/24). down.sh and on.sh of test/cluster work on it unchanged
# through these variables (test/cluster24/down.sh and on.sh set them and call those).
: "${STRATA_CLUSTER_DIR:=/tmp/strata-cluster24}"
: "${STRATA_CLUSTER_NS:=strata24}"
: "${STRATA_CLUSTER_NET:=10.213.78}"
export STRATA_CLUSTER_DIR STRATA_CLUSTER_NS STRATA_CLUSTER_NET
