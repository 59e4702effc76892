// Where `--container-save` puts a job's writable layer (pure):
//   ~/NAME:TAG   strata's own: a new image in the user's namespace, the job's image plus this layer
//   PATH         Pyxis's meaning: a squashfs file; relative to the job's working directory (where
//                Pyxis's tasks start), `~/` to the user's home (the shell leaves `~` after `=` alone)

import { posix } from 'node:path';
import { printable, userError } from '../../errors.js';
import { parseTagRef } from '../../store/ref.js';

export type SaveTarget = { kind: 'file'; path: string } | { kind: 'image'; tag: string };

const bad = (text: string, why: string) =>
  userError('E_BAD_SAVE', printable(`invalid --container-save "${text}": ${why}`), {
    hint: 'give a file path for a squashfs file (e.g. --container-save=./mine.sqsh) or ~/NAME:TAG for an image of your own',
  });

/** `~/NAME:TAG` names an image; anything else is a file path. */
const IMAGE_RE = /^~\/[^:/][^:]*:[^:/]+$/;

export function parseSaveTarget(text: string, where: { home?: string; workdir?: string }): SaveTarget {
  if (!text) throw bad(text, 'it is empty');
  if (/[\x00-\x1f\x7f]/.test(text)) throw bad(text, 'it contains a control character');
  if (IMAGE_RE.test(text)) {
    const ref = parseTagRef(text.slice(2));
    return { kind: 'image', tag: `~/${ref.name}:${ref.tag}` };
  }
  if (/(^|\/)\.{0,2}$/.test(text)) throw bad(text, 'it names a directory, not a file');
  let path: string;
  if (text.startsWith('/')) path = text;
  else if (text.startsWith('~/')) {
    if (!where.home?.startsWith('/')) throw bad(text, 'your home directory is not known here');
    path = posix.join(where.home, text.slice(2));
  } else {
    if (!where.workdir?.startsWith('/')) throw bad(text, 'it is relative, and the job has no working directory to start it from');
    path = posix.join(where.workdir, text);
  }
  path = posix.normalize(path);
  if (path.endsWith('/') || posix.basename(path) === '..' || path === '/') throw bad(text, 'it names a directory, not a file');
  if (path.length > 3000) throw bad(text, 'the path is too long');
  return { kind: 'file', path };
}
