// Points cluster.ts at the Slurm 24.11 test cluster (test/cluster24). Imported before cluster.ts,
// which reads these variables when it loads; test/cluster/on.sh and down.sh follow them too.
process.env.STRATA_CLUSTER_DIR = '/tmp/strata-cluster24';
process.env.STRATA_CLUSTER_NS = 'strata24';
process.env.STRATA_CLUSTER_NET = '10.213.78';
process.env.STRATA_CLUSTER_UP = new URL('../cluster24/up.sh', import.meta.url).pathname;
