// removeTree on a tree it cannot remove: a mount left inside it (GNU rm --one-file-system never
// crosses into one, so the directory holding it never empties). It must give up after its bounded
// passes with one node error that names rm's reason, never delete the mounted filesystem's files,
// and finish the job once the mount is gone. Root only (mounts a tmpfs; run under the mount lock).

import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isStrataError } from '../../src/errors.js';
import { execLog } from '../../src/host/exec.js';
import { removeTree } from '../../src/host/remove-tree.js';
import { TOOLS } from '../../src/host/tools.js';
import { expectNodeStateUnchanged, nodeState, type NodeState } from '../helpers/node-state.js';

let before: NodeState;
let work: string;
let mountPoint: string;

beforeAll(() => {
  before = nodeState();
  work = mkdtempSync(join(tmpdir(), 'strata-remove-tree-'));
  mountPoint = join(work, 'tree/job/mnt');
});

afterAll(() => {
  spawnSync('/usr/bin/umount', [mountPoint]);
  rmSync(work, { recursive: true, force: true });
  expectNodeStateUnchanged(before);
});

test('a tree with a mount inside: a bounded number of passes, then one node error naming the mount; the mount keeps its files', async () => {
  const tree = join(work, 'tree');
  mkdirSync(mountPoint, { recursive: true });
  writeFileSync(join(tree, 'top'), 'removable\n');
  writeFileSync(join(tree, 'job/file'), 'removable\n');
  execFileSync('/usr/bin/mount', ['-t', 'tmpfs', '-o', 'size=1m', 'strata-remove-tree', mountPoint]);
  writeFileSync(join(mountPoint, 'kept'), 'on another filesystem\n');

  const logged = execLog.length;
  const started = performance.now();
  const error = await removeTree(tree, 3).then(
    () => undefined,
    (failure: unknown) => failure,
  );
  const seconds = (performance.now() - started) / 1000;

  if (!isStrataError(error)) throw new Error(`expected a strata error, got ${String(error)}`);
  expect({ kind: error.kind, code: error.code }).toEqual({ kind: 'node', code: 'E_COMMAND' });
  expect(error.message).not.toContain('\n');
  // rm's own reason, naming the mount it would not cross into.
  expect(error.message).toBe(`${TOOLS.rm} failed: ${TOOLS.rm}: skipping '${mountPoint}', since it's on a different device`);
  // Exactly the passes asked for, with a short back-off between them: it gives up, it does not hang.
  expect(execLog.slice(logged).filter((run) => run.command.startsWith(`${TOOLS.rm} `))).toHaveLength(3);
  expect(seconds).toBeLessThan(10);
  // What it could remove is gone; it never crossed into the mount.
  expect(existsSync(join(tree, 'top'))).toBe(false);
  expect(existsSync(join(tree, 'job/file'))).toBe(false);
  expect(readFileSync(join(mountPoint, 'kept'), 'utf8')).toBe('on another filesystem\n');

  execFileSync('/usr/bin/umount', [mountPoint]);
  await removeTree(tree);
  expect(existsSync(tree)).toBe(false);
});

test("a job directory's shape (root-only directories holding files) goes without starting rm; a root-only mount inside is never entered", async () => {
  const tree = join(work, 'job-shaped');
  for (const dir of ['files', 'tmp/t', 'upper', 'slurm/bin']) mkdirSync(join(tree, dir), { recursive: true, mode: 0o755 });
  for (const file of ['journal', 'files/passwd', 'files/group', 'slurm/bin/srun']) writeFileSync(join(tree, file), 'x\n');
  const logged = execLog.length;
  await removeTree(tree);
  expect(existsSync(tree)).toBe(false);
  expect(execLog.slice(logged).filter((run) => run.command.startsWith(`${TOOLS.rm} `))).toHaveLength(0);

  // The same shape with a root-owned 0755 tmpfs left mounted at tmp/t: its files stay.
  const mounted = join(tree, 'tmp/t');
  mkdirSync(mounted, { recursive: true, mode: 0o755 });
  writeFileSync(join(tree, 'journal'), 'x\n');
  execFileSync('/usr/bin/mount', ['-t', 'tmpfs', '-o', 'size=1m,mode=0755', 'strata-remove-tree', mounted]);
  try {
    writeFileSync(join(mounted, 'kept'), 'on another filesystem\n');
    await expect(removeTree(tree, 1)).rejects.toThrow(/different device/);
    expect(readFileSync(join(mounted, 'kept'), 'utf8')).toBe('on another filesystem\n');
  } finally {
    execFileSync('/usr/bin/umount', [mounted]);
  }
  await removeTree(tree);
  expect(existsSync(tree)).toBe(false);
});
