// What the node agent compares to notice that it is out of date: the installed strata files
// (an upgrade replaces dist/ and package.json) and the configuration file. A stat per file,
// every request and every few seconds; the identity includes the inode, so a file replaced by
// rename (how the build and package managers install) is seen even with the same size and time.

import { statSync } from 'node:fs';
import { join } from 'node:path';

/** One line per file: path, inode, size, modification time (ns); "missing" when absent. */
export function fingerprint(files: string[]): string {
  return files
    .map((file) => {
      try {
        const stat = statSync(file, { bigint: true });
        return `${file} ${stat.ino} ${stat.size} ${stat.mtimeNs}`;
      } catch {
        return `${file} missing`;
      }
    })
    .join('\n');
}

/** The files whose change means "a new strata": the agent's code and everything it runs. */
export function installedFiles(dist: string): string[] {
  return ['bin/strata.js', 'prolog/slurm.js', 'epilog/slurm.js', 'prolog/slurm', 'epilog/slurm', 'helper/strata-mount', 'helper/strata-agent-gate', '../package.json'].map((file) => join(dist, file));
}

/** A watcher: undefined while `files` are as they were at creation, else which one changed. */
export function watchFiles(files: string[]): () => string | undefined {
  const initial = files.map((file) => fingerprint([file]));
  return () => {
    const index = files.findIndex((file, i) => fingerprint([file]) !== initial[i]);
    return index < 0 ? undefined : `changed: ${files[index]}`;
  };
}
