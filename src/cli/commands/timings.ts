// `--timings`: where a prolog's or epilog's time went, on stderr.

/** Where a prolog's or epilog's messages go: this process's stdout/stderr, or an agent's reply. */
export interface Output {
  out(text: string): void;
  err(text: string): void;
}
export const PROCESS_OUTPUT: Output = { out: (text) => process.stdout.write(text), err: (text) => process.stderr.write(text) };

export function printTimings(phase: string, timings: Record<string, number>, commands: { command: string; durationMs: number }[], totalMs: number, output: Output = PROCESS_OUTPUT) {
  const startup = process.uptime() * 1000 - totalMs;
  const lines = [`${phase} timings (ms):`, `  ${'node start-up'.padEnd(40)} ${startup.toFixed(1)}`];
  for (const [name, ms] of Object.entries(timings)) lines.push(`  ${name.padEnd(40)} ${ms.toFixed(1)}`);
  lines.push(`  ${'total (after start-up)'.padEnd(40)} ${totalMs.toFixed(1)}`);
  lines.push(`  commands run: ${commands.length}`);
  for (const command of commands) lines.push(`    ${command.durationMs.toFixed(1).padStart(6)}  ${command.command.slice(0, 110)}`);
  output.err(`${lines.join('\n')}\n`);
}
