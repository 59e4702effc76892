// Validation of the on-disk configuration against schema.ts. Pure: no I/O, so it can check any
// parsed document (a file, a test fixture, the example in etc/). Every problem is reported, each as
// `<key path>: <problem>; <what is allowed>`.
// Long (over ~300 lines): one checker per value type of the schema, each small; they share the
// error collector.

import { posix } from 'node:path';
import { parseQualifiedName } from '../runtime/devices/names.js';
import type { Config } from './types.js';
import {
  BUILTIN_ORIGIN,
  RESERVED_TARGETS,
  SETTINGS,
  allowedText,
  camelCase,
  leafName,
  type Setting,
} from './schema.js';
import { isWithin } from '../path-within.js';

export interface ValidationResult {
  /** Present exactly when `errors` is empty. */
  config?: Config;
  errors: string[];
}

// ---------------------------------------------------------------------------------------------
// Sizes

const UNITS: Record<string, number> = { '': 1, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40 };
const SIZE_RE = /^(\d+(?:\.\d+)?)\s*(?:([KMGT])(i)?)?(B)?$/i;

/**
 * Bytes of a size: an integer number of bytes, or a number with a binary K/M/G/T suffix, optionally
 * followed by `i` and/or `B` (`4G` = `4GiB` = `4GB` = 4294967296; case-insensitive). Fractions are
 * allowed with a suffix (`1.5G`) and rounded to whole bytes. Undefined when it is not a size.
 */
export function parseSize(text: string | number): number | undefined {
  if (typeof text === 'number') return Number.isSafeInteger(text) && text >= 0 ? text : undefined;
  if (typeof text !== 'string') return undefined;
  const match = SIZE_RE.exec(text.trim());
  if (!match) return undefined;
  const [, number, unit = ''] = match;
  if (!unit && number.includes('.')) return undefined;
  const bytes = Math.round(Number(number) * UNITS[unit.toUpperCase()]);
  return Number.isSafeInteger(bytes) ? bytes : undefined;
}

/** The shortest exact notation of a byte count (`4G`, `1536M`, `4097`); parseSize reads it back. */
export function formatSize(bytes: number): string {
  if (!Number.isSafeInteger(bytes) || bytes <= 0) return String(bytes);
  for (const unit of ['T', 'G', 'M', 'K']) {
    if (bytes % UNITS[unit] === 0) return `${bytes / UNITS[unit]}${unit}`;
  }
  return String(bytes);
}

const DURATION_UNITS: Record<string, number> = { '': 1, s: 1, m: 60, h: 3600, d: 86400 };
const DURATION_RE = /^(\d+)\s*([smhd]?)$/i;

/** Seconds of a duration: a whole number of seconds, or a number with s/m/h/d. Undefined when it is none. */
export function parseDuration(text: string | number): number | undefined {
  if (typeof text === 'number') return Number.isSafeInteger(text) && text >= 0 ? text : undefined;
  if (typeof text !== 'string') return undefined;
  const match = DURATION_RE.exec(text.trim());
  if (!match) return undefined;
  const seconds = Number(match[1]) * DURATION_UNITS[match[2].toLowerCase()];
  return Number.isSafeInteger(seconds) ? seconds : undefined;
}

/** The shortest exact notation of a number of seconds (`7d`, `36h`, `90s`); parseDuration reads it back. */
export function formatDuration(seconds: number): string {
  if (!Number.isSafeInteger(seconds) || seconds <= 0) return String(seconds);
  for (const unit of ['d', 'h', 'm']) {
    if (seconds % DURATION_UNITS[unit] === 0) return `${seconds / DURATION_UNITS[unit]}${unit}`;
  }
  return `${seconds}s`;
}

// ---------------------------------------------------------------------------------------------
// The schema as a tree of mappings, lists and leaves

interface MapNode {
  kind: 'map';
  children: Map<string, Node>;
}
interface ListNode {
  kind: 'list';
  setting: Setting;
  item: MapNode;
}
interface LeafNode {
  kind: 'leaf';
  setting: Setting;
}
type Node = MapNode | ListNode | LeafNode;

const newMap = (): MapNode => ({ kind: 'map', children: new Map() });

function buildTree(settings: readonly Setting[]): MapNode {
  const root = newMap();
  for (const setting of settings) {
    const segments = setting.key.split('.');
    let parent = root;
    for (const segment of segments.slice(0, -1)) {
      const name = segment.replace(/\[\]$/, '');
      let child = parent.children.get(name);
      if (!child) parent.children.set(name, (child = newMap()));
      if (child.kind === 'leaf') throw new Error(`schema: ${setting.key} nests under a leaf`);
      parent = child.kind === 'list' ? child.item : child;
    }
    const name = segments[segments.length - 1];
    if (parent.children.has(name)) throw new Error(`schema: ${setting.key} is defined twice`);
    parent.children.set(name, setting.type === 'list' ? { kind: 'list', setting, item: newMap() } : { kind: 'leaf', setting });
  }
  return root;
}

const TREE = buildTree(SETTINGS);
const ALL_KEYS = SETTINGS.map((s) => s.key);

// ---------------------------------------------------------------------------------------------
// Validation

type Obj = Record<string, unknown>;
const isMapping = (value: unknown): value is Obj =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** A value as quoted in a message. */
function show(value: unknown): string {
  if (value === null || value === undefined) return 'nothing';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'string') return JSON.stringify(value);
  return String(value);
}

const join = (path: string, name: string) => (path ? `${path}.${name}` : name);
const TOP = '(top level)';

class Checker {
  readonly errors: string[] = [];

  error(path: string, problem: string, allowed: string) {
    this.errors.push(`${path || TOP}: ${problem}; ${allowed}`);
  }

  map(node: MapNode, raw: unknown, path: string): Obj {
    const out: Obj = {};
    const names = [...node.children.keys()];
    if (raw === null || raw === undefined) raw = {}; // an empty section (every key commented out)
    if (!isMapping(raw)) {
      this.error(path, `expected a mapping, got ${show(raw)}`, `use the keys ${names.join(', ')}`);
      return out;
    }
    const given = raw as Obj;
    for (const name of Object.keys(given)) {
      if (!node.children.has(name)) this.unknown(path, name, names);
    }
    const derived: Setting[] = [];
    for (const [name, child] of node.children) {
      const present = Object.prototype.hasOwnProperty.call(given, name);
      const value = present ? given[name] : undefined;
      const childPath = join(path, name);
      const field = camelCase(name);
      if (child.kind === 'map') {
        out[field] = this.map(child, value, childPath);
      } else if (child.kind === 'list') {
        out[field] = this.list(child, value, childPath);
      } else if (!present) {
        const { setting } = child;
        if (setting.required) this.error(childPath, 'is required but missing', allowedText(setting));
        else if (setting.defaultFrom) derived.push(setting);
        else out[field] = this.leaf(setting, setting.default, childPath);
      } else {
        out[field] = this.leaf(child.setting, value, childPath);
      }
    }
    for (const setting of derived) {
      out[camelCase(leafName(setting.key))] = out[camelCase(setting.defaultFrom!)];
    }
    return out;
  }

  list(node: ListNode, raw: unknown, path: string): Obj[] {
    if (raw === null || raw === undefined) return [];
    if (!Array.isArray(raw)) {
      this.error(path, `expected a list, got ${show(raw)}`, allowedText(node.setting));
      return [];
    }
    return raw.map((item, index) => this.map(node.item, item, `${path}[${index}]`));
  }

  leaf(setting: Setting, value: unknown, path: string): unknown {
    const allowed = allowedText(setting);
    if (value === null || value === undefined) {
      const hint = setting.emptyAllowed ? ' (or "" for none)' : '';
      this.error(path, 'has no value', `set a value${hint} or remove the key to use the default`);
      return undefined;
    }
    switch (setting.type) {
      case 'path': {
        if (typeof value !== 'string') return this.error(path, `expected a path, got ${show(value)}`, allowed);
        if (value === '' && setting.emptyAllowed) return '';
        if (!value.startsWith('/')) return this.error(path, `${show(value)} is not an absolute path`, allowed);
        const bad = [...(setting.forbiddenChars ?? '')].find((c) => value.includes(c));
        if (bad) return this.error(path, `${show(value)} contains ${JSON.stringify(bad)}`, allowed);
        return normalizePath(value);
      }
      case 'size': {
        const bytes = typeof value === 'string' || typeof value === 'number' ? parseSize(value) : undefined;
        if (bytes === undefined) return this.error(path, `${show(value)} is not a size`, allowed);
        const min = setting.min === undefined ? 0 : parseSize(setting.min)!;
        if (bytes < min) return this.error(path, `${show(value)} is too small`, `use at least ${setting.min}`);
        return bytes;
      }
      case 'enum': {
        if (typeof value === 'string' && setting.allowed?.includes(value)) return value;
        return this.error(path, `${show(value)} is not allowed`, allowed);
      }
      case 'boolean': {
        const bool = parseBoolean(value);
        if (bool === undefined) return this.error(path, `${show(value)} is not a boolean`, allowed);
        return bool;
      }
      case 'integer': {
        const number = typeof value === 'number' ? value : typeof value === 'string' && /^\s*-?\d+\s*$/.test(value) ? Number(value) : NaN;
        if (!Number.isSafeInteger(number)) return this.error(path, `${show(value)} is not a whole number`, allowed);
        if (setting.min !== undefined && number < Number(setting.min)) return this.error(path, `${show(value)} is too small`, allowed);
        return number;
      }
      case 'duration': {
        const seconds = typeof value === 'string' || typeof value === 'number' ? parseDuration(value) : undefined;
        if (seconds === undefined) return this.error(path, `${show(value)} is not a duration`, allowed);
        return seconds;
      }
      case 'paths': {
        if (!Array.isArray(value)) return this.error(path, `expected a list, got ${show(value)}`, allowed);
        const bad = value.findIndex((item) => typeof item !== 'string' || !item.startsWith('/'));
        if (bad >= 0) return this.error(`${path}[${bad}]`, `${show(value[bad])} is not an absolute path`, allowed);
        return [...new Set((value as string[]).map(normalizePath))];
      }
      case 'devices': {
        if (!Array.isArray(value)) return this.error(path, `expected a list, got ${show(value)}`, allowed);
        const bad = value.findIndex((item) => typeof item !== 'string' || 'problem' in parseQualifiedName(item));
        if (bad >= 0) return this.error(`${path}[${bad}]`, `${show(value[bad])} is not a CDI device name`, allowed);
        return [...new Set(value as string[])];
      }
      case 'list':
        throw new Error(`schema: list ${setting.key} handled as a leaf`);
    }
  }

  unknown(path: string, name: string, siblings: string[]) {
    const full = join(path, name);
    const generic = path.replace(/\[\d+\]/g, '[]');
    // `upper.max_size: 4G` written flat, as the docs name it.
    if (name.includes('.') && ALL_KEYS.includes(join(generic, name))) {
      const dot = name.lastIndexOf('.');
      return this.error(full, 'unknown key', `write dotted keys nested: ${name.slice(dot + 1)} under ${join(path, name.slice(0, dot))}`);
    }
    const near = closest(name, siblings);
    if (near) return this.error(full, 'unknown key', `did you mean ${join(path, near)}?`);
    // A key of another section, e.g. `max_size` at the top level.
    const elsewhere = closest(
      name,
      ALL_KEYS.filter((k) => !k.includes('[]')),
      (key) => leafName(key),
    );
    if (elsewhere) return this.error(full, 'unknown key', `did you mean ${elsewhere}?`);
    this.error(full, 'unknown key', `known keys${path ? ` in ${path}` : ''}: ${siblings.join(', ')}`);
  }
}

function parseBoolean(value: unknown): boolean | undefined {
  if (typeof value === 'boolean') return value;
  if (value === 1 || value === 0) return value === 1;
  if (typeof value !== 'string') return undefined;
  const text = value.trim().toLowerCase();
  if (['true', 'yes', '1'].includes(text)) return true;
  if (['false', 'no', '0'].includes(text)) return false;
  return undefined;
}

function normalizePath(path: string): string {
  const normal = posix.normalize(path);
  return normal.length > 1 && normal.endsWith('/') ? normal.slice(0, -1) : normal;
}


/** Optimal-string-alignment distance (a swap of neighbours counts 1). */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 0; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}

/** The candidate nearest to `name` within edit distance 2 (ignoring case and `-` vs `_`). */
function closest(name: string, candidates: string[], nameOf: (c: string) => string = (c) => c): string | undefined {
  const fold = (s: string) => s.toLowerCase().replace(/-/g, '_');
  let best: string | undefined;
  let bestDistance = 3;
  for (const candidate of candidates) {
    const distance = editDistance(fold(name), fold(nameOf(candidate)));
    if (distance < bestDistance) [best, bestDistance] = [candidate, distance];
  }
  return best;
}

/** Rules that involve more than one key. */
function crossCheck(out: Obj, raw: unknown, check: Checker) {
  // Sections that failed to validate are missing or partial: check only what is there.
  const { defaultSize, maxSize } = (out.upper ?? {}) as { defaultSize?: number; maxSize?: number };
  if (defaultSize !== undefined && maxSize !== undefined && defaultSize > maxSize) {
    check.error(
      'upper.default_size',
      `${formatSize(defaultSize)} is larger than upper.max_size (${formatSize(maxSize)})`,
      'use a size no larger than upper.max_size',
    );
  }
  const { onDemand, userImports } = (out.import ?? {}) as { onDemand?: boolean; userImports?: boolean };
  if (onDemand === true && userImports === false) {
    check.error('import.on_demand', 'needs import.user_imports: true (an import on first use is a user import)', 'set import.user_imports: true (and the sudoers rule of docs/install.md), or turn import.on_demand off');
  }
  const runtimeDir = out.runtimeDir as string | undefined;
  const rawMounts = isMapping(raw) && Array.isArray(raw.mounts) ? raw.mounts : [];
  const seen = new Map<string, number>();
  ((out.mounts ?? []) as Obj[]).forEach((mount, index) => {
    const target = mount.target as string | undefined;
    if (target === undefined) return;
    const path = `mounts[${index}].target`;
    const item = rawMounts[index] as unknown;
    const from = isMapping(item) && item.target !== undefined ? '' : ' (from source)';
    const what = `${JSON.stringify(target)}${from}`;
    if (RESERVED_TARGETS.includes(target)) {
      check.error(path, `${what} is reserved`, `use a path other than ${RESERVED_TARGETS.join(', ')}`);
    } else if (runtimeDir !== undefined && isWithin(target, runtimeDir)) {
      check.error(path, `${what} is inside runtime_dir (${runtimeDir})`, 'use a path outside runtime_dir');
    }
    const first = seen.get(target);
    if (first !== undefined) {
      check.error(path, `${what} is also the target of mounts[${first}]`, 'use each target once');
    } else {
      seen.set(target, index);
    }
  });
}

/**
 * Check a parsed configuration document (normally the result of YAML `load`) and build the effective
 * Config with every default filled in. `origin` is recorded in the Config (a path, or "built-in
 * defaults"). An empty document (null/undefined) means all defaults. Pure: no I/O.
 */
export function validateConfig(raw: unknown, origin: string): ValidationResult {
  const check = new Checker();
  const out = check.map(TREE, raw, '');
  crossCheck(out, raw, check);
  if (check.errors.length > 0) return { errors: check.errors };
  return { config: { origin, ...out } as unknown as Config, errors: [] };
}

/** The configuration used when there is no file at all. */
export function defaultConfig(origin: string = BUILTIN_ORIGIN): Config {
  const { config, errors } = validateConfig({}, origin);
  if (!config) throw new Error(`schema defaults do not validate: ${errors.join('; ')}`);
  return config;
}

/**
 * The on-disk form of an effective Config (snake_case keys, sizes like `16G`, every key explicit):
 * what `strata config check` prints; validateConfig reads it back to the same Config.
 */
export function toOnDisk(config: Config): Obj {
  const walk = (node: MapNode, value: Obj): Obj => {
    const out: Obj = {};
    for (const [name, child] of node.children) {
      const field = value[camelCase(name)];
      if (child.kind === 'map') out[name] = walk(child, field as Obj);
      else if (child.kind === 'list') out[name] = (field as Obj[]).map((item) => walk(child.item, item));
      else out[name] = child.setting.type === 'size' ? formatSize(field as number) : child.setting.type === 'duration' ? formatDuration(field as number) : field;
    }
    return out;
  };
  return walk(TREE, config as unknown as Obj);
}
