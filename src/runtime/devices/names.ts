// CDI names: a kind `vendor.com/class` and a fully qualified device name `vendor.com/class=name`.
// The grammar follows the CDI spec (SPEC.md "Kind", "CDI Devices"); device requests come from job
// users, so everything is checked character by character before it is used or echoed.

import { printable } from '../../errors.js';

export interface QualifiedName {
  vendor: string;
  class: string;
  /** The device name inside its kind (`0`, `all`, `GPU-3f1c...`). */
  name: string;
}

/** The name every spec may omit and a request may use: every device of the kind. */
export const ALL_DEVICES = 'all';

const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/i;
// Letters, digits, and `-`, `_`, `.` between them; a CDI class or device name.
const SEGMENT = /^[a-z0-9]([a-z0-9_.-]*[a-z0-9])?$/i;
// Longer than any real device request; bounds what a hostile request can make us echo or store.
const MAX_NAME = 253 + 1 + 63 + 1 + 128;

/** Why `vendor` is not a DNS subdomain (the spec's prefix rule), or undefined when it is one. */
export function vendorProblem(vendor: string): string | undefined {
  if (!vendor) return 'the vendor is empty';
  if (vendor.length > 253) return 'the vendor is longer than 253 characters';
  if (!vendor.split('.').every((label) => DNS_LABEL.test(label))) return 'the vendor is not a DNS name';
  return undefined;
}

/** Why `segment` is not a class or device name, or undefined when it is one. */
export function segmentProblem(segment: string, what: 'class' | 'device name'): string | undefined {
  if (!segment) return `the ${what} is empty`;
  if (what === 'class' && segment.length > 63) return 'the class is longer than 63 characters';
  if (segment.length > 128) return `the ${what} is longer than 128 characters`;
  if (!SEGMENT.test(segment)) return `the ${what} may hold only letters, digits, "-", "_" and "." between them`;
  return undefined;
}

/** `vendor.com/class` split, or the reason it is not a kind. */
export function parseKind(kind: string): { vendor: string; class: string } | { problem: string } {
  const slash = kind.indexOf('/');
  if (slash < 0) return { problem: 'a kind is vendor.com/class' };
  const vendor = kind.slice(0, slash);
  const cls = kind.slice(slash + 1);
  const problem = vendorProblem(vendor) ?? segmentProblem(cls, 'class');
  return problem ? { problem } : { vendor, class: cls };
}

/** `vendor.com/class=name` split, or the reason it is not a fully qualified device name. */
export function parseQualifiedName(text: string): QualifiedName | { problem: string } {
  if (text.length > MAX_NAME) return { problem: 'the name is too long' };
  const equals = text.indexOf('=');
  if (equals < 0) return { problem: 'a device is named vendor.com/class=name' };
  const kind = parseKind(text.slice(0, equals));
  if ('problem' in kind) return kind;
  const name = text.slice(equals + 1);
  const problem = segmentProblem(name, 'device name');
  return problem ? { problem } : { ...kind, name };
}

export const kindOf = (name: { vendor: string; class: string }) => `${name.vendor}/${name.class}`;
export const qualified = (name: QualifiedName) => `${kindOf(name)}=${name.name}`;

/** A user-supplied name as quoted in a one-line message. */
export const quoteName = (text: string) => `"${printable(text.length > MAX_NAME ? `${text.slice(0, MAX_NAME)}...` : text)}"`;
