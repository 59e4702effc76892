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
const escape = (path: string) => path.replace(/[ \t\n\\]/g, (char) => `\\${char.charCodeAt(0).toString(8).padStart(3, '0')}`);

/** Parse mountinfo text (only the lines that contain `mentioning`, when given). Pure. */
export function parseMountinfo(text: string, mentioning?: string): MountEntry[] {
  const entries: MountEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line || (mentioning !== undefined && !line.includes(mentioning))) continue;
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

/**
 * The mount table; with `within`, only the mounts at or below that path (in table order). A node
 * running many jobs has thousands of mounts: the lines that cannot be below `within` are skipped
 * before they are parsed.
 */
export function readMountinfo(within?: string): MountEntry[] {
  const text = readFileSync('/proc/self/mountinfo', 'utf8');
  return within === undefined ? parseMountinfo(text) : parseMountinfoWithin(text, within);
}

/** The mounts of mountinfo text at or below `path`, in table order. Pure. */
export const parseMountinfoWithin = (text: string, path: string) => entriesWithin(parseMountinfo(text, escape(path)), path);

/** Mounts at `path` or below it, in table order (a mount stacked on another comes after it). */
export function entriesWithin(entries: MountEntry[], path: string): MountEntry[] {
  const prefix = path.endsWith('/') ? path : `${path}/`;
  const within: MountEntry[] = [];
  for (const entry of entries) if (entry.mountPoint === path || entry.mountPoint.startsWith(prefix)) within.push(entry);
  return within;
}

/** Mounts at `path` or below it, deepest (most recently stacked) first: the order to unmount them. */
export function mountsUnder(entries: MountEntry[], path: string): MountEntry[] {
  return entriesWithin(entries, path)
    .map((entry, index) => ({ entry, index }))
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
