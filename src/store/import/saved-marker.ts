// The mark a `--container-save=PATH` file carries so that it can be given back as an image
// (pure): the pinned digest of the job's image, as one `user.` extended attribute on the squashfs
// root directory. sqfs2tar (how strata, and most tools, read such a file as a layer) never emits
// the root directory, so the mark costs nothing when the file is imported elsewhere; a mounted
// file shows it only as one attribute of `/`. The file is the user's: the mark is hostile input,
// read in user space (rdsquashfs, as the user) and accepted only in its one exact form.

/** The attribute's name (the `user.` namespace: anyone may set it, nothing trusts it by name). */
export const SAVED_MARKER_XATTR = 'user.strata.saved-layer';

const FORMAT = 'strata-saved-layer/1';
const MARKER_RE = /^strata-saved-layer\/1 base=(sha256:[0-9a-f]{64})$/;

/** The attribute's value for a layer saved on top of `base` (a manifest digest). */
export function savedMarkerValue(base: string): string {
  const value = `${FORMAT} base=${base}`;
  if (!MARKER_RE.test(value)) throw new Error(`not a manifest digest: ${base}`);
  return value;
}

/** What the root directory's attributes say about the file. */
export type SavedMarker = { kind: 'none' } | { kind: 'saved-layer'; base: string } | { kind: 'invalid'; why: string };

/**
 * The mark in rdsquashfs's listing of the root's attributes (`-x /`: one `KEY=VALUE` line each,
 * a value that is not printable shown as `0x…`). A value may itself hold a newline (the file's
 * maker chooses it), so a line that only looks like the attribute is possible: the mark counts
 * only if exactly one line names it and that line is exactly a valid mark; any other line naming
 * it makes the file's mark invalid rather than silently plain.
 */
export function parseSavedMarker(listing: string): SavedMarker {
  const prefix = `${SAVED_MARKER_XATTR}=`;
  const lines = listing.split('\n').filter((line) => line.startsWith(prefix));
  if (lines.length === 0) return { kind: 'none' };
  if (lines.length > 1) return { kind: 'invalid', why: `${SAVED_MARKER_XATTR} appears more than once` };
  const value = lines[0]!.slice(prefix.length);
  if (!value.startsWith(`${FORMAT} `)) return { kind: 'invalid', why: `${SAVED_MARKER_XATTR} is not of a format this strata reads (${FORMAT})` };
  const match = MARKER_RE.exec(value);
  if (!match) return { kind: 'invalid', why: `${SAVED_MARKER_XATTR} does not name the base image as base=sha256:<64 hex digits>` };
  return { kind: 'saved-layer', base: match[1]! };
}
