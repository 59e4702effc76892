// Checks one parsed CDI spec document against the spec (SPEC.md, schema/defs.json,
// specs-go/version.go): every field's type, unknown fields (the reference loader refuses them
// too), names, and that each field is allowed in the version the file says it is. Pure; every
// problem is reported, each with where it is (`devices[1].containerEdits.mounts[0].hostPath`).

import { posix } from 'node:path';
import { parseKind, segmentProblem } from './names.js';
import { CDI_CURRENT_VERSION, CDI_VERSIONS, HOOK_NAMES, type CdiEdits, type CdiSpec } from './spec-types.js';

export type SpecValidation = { spec: CdiSpec; vendor: string; class: string; errors?: undefined } | { errors: string[] };

type Obj = Record<string, unknown>;
type Field = (value: unknown, at: string) => void;

const isObj = (value: unknown): value is Obj => typeof value === 'object' && value !== null && !Array.isArray(value);
const UINT32 = 0xffffffff;

class Checker {
  readonly errors: string[] = [];
  /** Fields found, each with the version that introduced it, for the version check. */
  readonly needs: { version: string; what: string }[] = [];

  error(at: string, problem: string) {
    this.errors.push(`${at}: ${problem}`);
  }

  object(value: unknown, at: string, fields: Record<string, Field>, required: string[] = []): value is Obj {
    if (!isObj(value)) return this.error(at, 'expected a mapping'), false;
    for (const key of Object.keys(value)) if (!(key in fields)) this.error(`${at}.${key}`, 'unknown field');
    for (const key of required) if (value[key] === undefined || value[key] === null) this.error(`${at}.${key}`, 'is required');
    for (const [key, check] of Object.entries(fields)) if (value[key] !== undefined && value[key] !== null) check(value[key], `${at}.${key}`);
    return true;
  }

  list(value: unknown, at: string, item: Field) {
    if (!Array.isArray(value)) return this.error(at, 'expected a list');
    value.forEach((entry, index) => item(entry, `${at}[${index}]`));
  }

  string = (value: unknown, at: string) => {
    if (typeof value !== 'string') this.error(at, 'expected a string');
  };

  absolute = (value: unknown, at: string) => {
    if (typeof value !== 'string' || !value) return this.error(at, 'expected a non-empty path');
    if (!value.startsWith('/')) return this.error(at, `"${value}" is not an absolute path`);
    if (value.split('/').includes('..')) return this.error(at, `"${value}" contains ".."`);
    if (value.includes('\0')) this.error(at, 'contains a NUL byte');
  };

  integer = (min: number, max: number) => (value: unknown, at: string) => {
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) this.error(at, `expected a whole number from ${min} to ${max}`);
  };

  strings = (value: unknown, at: string) => this.list(value, at, this.string);

  annotations = (value: unknown, at: string) => {
    if (!isObj(value)) return this.error(at, 'expected a mapping of strings');
    for (const [key, entry] of Object.entries(value)) if (typeof entry !== 'string') this.error(`${at}.${key}`, 'expected a string');
  };

  env = (value: unknown, at: string) =>
    this.list(value, at, (entry, where) => {
      if (typeof entry !== 'string' || entry.indexOf('=') <= 0) this.error(where, 'expected NAME=VALUE');
    });

  need(version: string, what: string) {
    this.needs.push({ version, what });
  }

  edits(value: unknown, at: string) {
    const edits = value as CdiEdits;
    this.object(value, at, {
      env: this.env,
      deviceNodes: (v, a) => this.list(v, a, (node, where) => this.deviceNode(node, where)),
      mounts: (v, a) => this.list(v, a, (mount, where) => this.mount(mount, where)),
      hooks: (v, a) => this.list(v, a, (hook, where) => this.hook(hook, where)),
      additionalGids: (v, a) => (this.need('0.7.0', a), this.list(v, a, this.integer(0, UINT32))),
      intelRdt: (v, a) => {
        this.need('0.7.0', a);
        this.object(v, a, { closID: this.string, l3CacheSchema: this.string, memBwSchema: this.string, schemata: (s, w) => (this.need('1.1.0', w), this.strings(s, w)), enableMonitoring: (s, w) => (s === true && this.need('1.1.0', w), typeof s !== 'boolean' && this.error(w, 'expected true or false')) });
      },
      netDevices: (v, a) => {
        if (Array.isArray(v) && v.length) this.need('1.1.0', a);
        this.list(v, a, (dev, where) => this.object(dev, where, { hostInterfaceName: this.nonEmpty, name: this.nonEmpty }, ['hostInterfaceName', 'name']));
      },
    });
    return edits;
  }

  nonEmpty = (value: unknown, at: string) => {
    if (typeof value !== 'string' || !value) this.error(at, 'expected a non-empty string');
  };

  deviceNode(value: unknown, at: string) {
    this.object(value, at, {
      path: this.absolute,
      hostPath: (v, a) => (this.need('0.5.0', a), this.absolute(v, a)),
      type: (v, a) => {
        if (typeof v !== 'string' || !['', 'b', 'c', 'u', 'p'].includes(v)) this.error(a, 'expected one of b, c, u, p');
      },
      major: this.integer(0, UINT32),
      minor: this.integer(0, UINT32),
      fileMode: this.integer(0, UINT32),
      permissions: (v, a) => {
        if (typeof v !== 'string' || (v !== 'none' && !/^[rwm]*$/.test(v))) this.error(a, 'expected letters of "rwm", or "none"');
      },
      uid: this.integer(0, UINT32),
      gid: this.integer(0, UINT32),
    }, ['path']);
  }

  mount(value: unknown, at: string) {
    this.object(value, at, { hostPath: this.absolute, containerPath: this.absolute, type: (v, a) => (this.need('0.4.0', a), this.string(v, a)), options: this.strings }, ['hostPath', 'containerPath']);
  }

  hook(value: unknown, at: string) {
    this.object(value, at, {
      hookName: (v, a) => {
        if (typeof v !== 'string' || !(HOOK_NAMES as readonly string[]).includes(v)) this.error(a, `expected one of ${HOOK_NAMES.join(', ')}`);
      },
      path: this.absolute,
      args: this.strings,
      env: this.env,
      timeout: this.integer(1, UINT32),
    }, ['hookName', 'path']);
  }
}

const versionIndex = (version: string) => (CDI_VERSIONS as readonly string[]).indexOf(version.replace(/^v/, ''));

/** Check one parsed spec document; the normalised spec, or every problem found. */
export function validateSpec(raw: unknown): SpecValidation {
  const check = new Checker();
  let kind: ReturnType<typeof parseKind> | undefined;
  const names = new Set<string>();
  const ok = check.object(raw, 'spec', {
    cdiVersion: (v, a) => {
      if (typeof v !== 'string') return check.error(a, 'expected a version string such as "0.5.0"');
      if (versionIndex(v) < 0) check.error(a, `"${v}" is not a CDI version strata knows (${CDI_VERSIONS[0]} to ${CDI_CURRENT_VERSION})`);
    },
    kind: (v, a) => {
      if (typeof v !== 'string') return check.error(a, 'expected vendor.com/class');
      kind = parseKind(v);
      if ('problem' in kind) return check.error(a, `"${v}": ${kind.problem}`);
      if (kind.class.includes('.')) check.need('0.6.0', `${a} (a "." in the class)`);
    },
    annotations: (v, a) => (check.need('0.6.0', a), check.annotations(v, a)),
    devices: (v, a) => {
      if (Array.isArray(v) && v.length === 0) return check.error(a, 'a spec must define at least one device');
      check.list(v, a, (device, where) => {
        check.object(device, where, {
          name: (n, w) => {
            if (typeof n !== 'string') return check.error(w, 'expected a string');
            const problem = segmentProblem(n, 'device name');
            if (problem) return check.error(w, `"${n}": ${problem}`);
            if (/^[0-9]/.test(n)) check.need('0.5.0', `${w} (a name starting with a digit)`);
            if (names.has(n)) check.error(w, `device "${n}" is defined twice`);
            names.add(n);
          },
          annotations: (n, w) => (check.need('0.6.0', w), check.annotations(n, w)),
          containerEdits: (e, w) => {
            check.edits(e, w);
            if (isObj(e) && !Object.values(e).some((field) => (Array.isArray(field) ? field.length > 0 : field !== undefined && field !== null))) check.error(w, 'a device must edit something');
          },
        }, ['name', 'containerEdits']);
      });
    },
    containerEdits: (v, a) => check.edits(v, a),
  }, ['cdiVersion', 'kind', 'devices']);
  if (ok && typeof (raw as Obj).cdiVersion === 'string') {
    const declared = versionIndex((raw as Obj).cdiVersion as string);
    for (const { version, what } of check.needs) {
      if (declared >= 0 && versionIndex(version) > declared) check.error(what, `needs cdiVersion ${version} or later, the spec says ${(raw as Obj).cdiVersion as string}`);
    }
  }
  if (check.errors.length || !kind || 'problem' in kind) return { errors: check.errors.length ? check.errors : ['spec: invalid kind'] };
  return { spec: raw as unknown as CdiSpec, vendor: kind.vendor, class: kind.class };
}

/** A container path in one canonical form (`/usr//lib/` -> `/usr/lib`), for comparing targets. */
export const canonicalPath = (path: string) => {
  const normal = posix.normalize(path);
  return normal.length > 1 && normal.endsWith('/') ? normal.slice(0, -1) : normal;
};
