// Reads the kernel's mount table (/proc/self/mountinfo). Teardown and layer sharing are decided
// from this, never from counters a killed process could leave wrong.

import { readFileSync } from 'node:fs';

export interface MountEntry {
  id: number;
  parentId: number;
  /** major:minor of the mounted device. */
  device: string;
  mountPoint: string;
  options: string;
  propagation: string[];
  fsType: string;
  source: string;
  superOptions: string;
}

// mountinfo escapes space, tab, newline and backslash as octal (\040 ...).
const unescape = (field: string) => field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));

/** Parse mountinfo text. Pure. */
export function parseMountinfo(text: string): MountEntry[] {
  const entries: MountEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    const fields = line.split(' ');
    const dash = fields.indexOf('-', 6);
    if (dash < 0) continue;
    entries.push({
      id: Number(fields[0]),
      parentId: Number(fields[1]),
      device: fields[2],
      mountPoint: unescape(fields[4]),
      options: fields[5],
      propagation: fields.slice(6, dash),
      fsType: fields[dash + 1],
      source: unescape(fields[dash + 2]),
      superOptions: fields[dash + 3] ?? '',
    });
  }
  return entries;
}

export function readMountinfo(): MountEntry[] {
  return parseMountinfo(readFileSync('/proc/self/mountinfo', 'utf8'));
}

/** Mounts at `path` or below it, deepest (most recently stacked) first: the order to unmount them. */
export function mountsUnder(entries: MountEntry[], path: string): MountEntry[] {
  const prefix = path.endsWith('/') ? path : `${path}/`;
  return entries
    .map((entry, index) => ({ entry, index }))
    .filter(({ entry }) => entry.mountPoint === path || entry.mountPoint.startsWith(prefix))
    .sort((a, b) => b.entry.mountPoint.length - a.entry.mountPoint.length || b.index - a.index)
    .map(({ entry }) => entry);
}

export const isMounted = (entries: MountEntry[], path: string) => entries.some((entry) => entry.mountPoint === path);

/** The value of one `key=value` option in a comma-separated option string (overlay's superOptions). */
export function optionValue(options: string, key: string): string | undefined {
  // overlay escapes commas inside values with a backslash; split on unescaped commas only.
  for (const option of options.split(/(?<!\\),/)) {
    if (option.startsWith(`${key}=`)) return option.slice(key.length + 1);
  }
  return undefined;
}

/** The layer ids an overlay mount stacks (its lowerdir list, relative to the layer dir). */
export const lowerIdsOf = (entry: MountEntry): string[] => (optionValue(entry.superOptions, 'lowerdir') ?? '').split(/(?<!\\):/).filter(Boolean);
