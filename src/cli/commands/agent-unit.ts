// The systemd unit that keeps the node agent (`strata node agent`) running; written by
// `strata install-slurm`. Why systemd and not started on demand by a prolog: see docs/decisions.md.

export const AGENT_UNIT = 'strata-agent.service';

/** The unit for the installed CLI, run by `node` (absolute: no PATH is assumed anywhere). */
export function agentUnit(cli: string, node: string, config?: string): string {
  return `# strata node agent: serves the Slurm prolog/epilog front-ends without a Node start-up per job.
# Written by strata install-slurm. Without it (stopped, crashed, not installed) the front-ends run
# the Node entry points themselves: slower, never wrong. It restarts itself after an upgrade of
# strata or a change of strata.yaml (it exits once its jobs are done; Restart= starts the new one).
[Unit]
Description=strata node agent (container job set-up without a Node start-up per job)
Documentation=man:strata(1)
After=local-fs.target remote-fs.target
# Never give up restarting: a missing agent only costs time, but it should come back.
StartLimitIntervalSec=0
Before=slurmd.service

[Service]
Type=simple
ExecStart=${node} ${cli} node agent
${config ? `Environment=STRATA_CONFIG=${config}\n` : ''}Restart=always
RestartSec=1
# SIGTERM to the agent only: it finishes the jobs in flight (its mount executors and socket gate
# must live until then); whatever is left afterwards is killed.
KillMode=mixed
TimeoutStopSec=150
# Mounts must be made in the host's mount namespace: no sandboxing options here.
User=root

[Install]
WantedBy=multi-user.target
`;
}
