// man/strata.1 and man/strata.yaml.5 are generated (scripts/gen-man.mjs, run by the build) from the
// yargs command definitions and the configuration schema; these tests fail when either drifts.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { SETTINGS } from '../../src/config/schema.js';

const root = new URL('../..', import.meta.url).pathname;
const read = (relative: string) => readFileSync(`${root}${relative}`, 'utf8');
const unroff = (text: string) => text.replace(/\\-/g, '-').replace(/\\f[BIR]/g, '').replace(/\\e/g, '\\');

test('the committed man pages are what the generator makes from the sources', () => {
  const result = spawnSync(process.execPath, [`${root}scripts/gen-man.mjs`, '--check'], { encoding: 'utf8' });
  expect(result.stderr).toBe('');
  expect(result.status).toBe(0);
});

test('strata(1) has every command of the CLI, with its options', () => {
  const page = unroff(read('man/strata.1'));
  const main = read('src/cli/main.ts');
  const commands = [...main.matchAll(/\.command\('([^']+)'/g)].map((m) => m[1]);
  expect(commands.length).toBeGreaterThan(5);
  // Nested commands (`y.command('status', ...)` inside `node`) appear under their parent.
  const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  for (const command of commands) expect(page).toMatch(new RegExp(`^\\.B strata (\\S+ )?${escape(command)}$`, 'm'));
  for (const option of ['--tag', '--image-digest', '--upper-size', '--dry-run', '--json']) expect(page).toContain(option);
});

test('strata.yaml(5) has every setting with its default', () => {
  const page = unroff(read('man/strata.yaml.5'));
  for (const setting of SETTINGS) expect(page).toContain(`${setting.key} (${setting.type}; default:`);
});
