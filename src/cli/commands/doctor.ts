// `strata doctor [--json]`: is this node fit to run container jobs? One line per check, each
// problem with its fix; exit 0 when fit (warnings allowed), 1 when not. Cheap and side-effect free
// apart from one throw-away test mount, so it can run as a periodic node health check
// (etc/slurm/strata-healthcheck.sh drains the node on exit 1).

import { runChecks, isFit, type Check } from '../../doctor/checks.js';
import { gatherFacts, type GatherOptions } from '../../doctor/gather.js';

export interface DoctorIo extends GatherOptions {
  stdout?: (text: string) => void;
}

const LABELS: Record<Check['status'], string> = { ok: 'ok', warn: 'WARN', fail: 'FAIL' };

export async function doctorCommand(args: { json?: boolean }, io: DoctorIo = {}): Promise<number> {
  const out = io.stdout ?? ((text: string) => void process.stdout.write(text));
  const checks = runChecks(await gatherFacts(io));
  const fit = isFit(checks);
  if (args.json) {
    out(`${JSON.stringify({ fit, checks }, null, 2)}\n`);
  } else {
    out(renderChecks(checks));
  }
  return fit ? 0 : 1;
}

/** The human form: one aligned line per check, then the verdict. */
export function renderChecks(checks: readonly Check[]): string {
  const width = Math.max(...checks.map((check) => check.name.length));
  const lines = checks.map((check) => `${LABELS[check.status].padEnd(4)}  ${check.name.padEnd(width)}  ${check.message}${check.fix ? `; fix: ${check.fix}` : ''}`);
  const failed = checks.filter((check) => check.status === 'fail').length;
  const warned = checks.filter((check) => check.status === 'warn').length;
  const warnings = warned ? ` (${warned} warning${warned === 1 ? '' : 's'})` : '';
  lines.push(failed ? `strata doctor: this node is NOT fit for jobs: ${failed} check${failed === 1 ? '' : 's'} failed${warnings}` : `strata doctor: this node is fit for jobs${warnings}`);
  return `${lines.join('\n')}\n`;
}
