// Image references as users type them: `name[:tag]`, `name@sha256:<hex>`, or a bare `sha256:<hex>`.
// Pure. Names follow the OCI distribution grammar, with an optional registry host first.

import { userError } from '../errors.js';

export interface ImageRef {
  name?: string;
  tag?: string;
  digest?: string;
}

const COMPONENT = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
const HOST = '(?:[a-zA-Z0-9-]+(?:\\.[a-zA-Z0-9-]+)*(?::[0-9]+)?)';
const NAME_RE = new RegExp(`^(?:${HOST}/)?${COMPONENT}(?:/${COMPONENT})*$`);
const TAG_RE = /^[\w][\w.-]{0,127}$/;
const DIGEST_RE = /^sha256:[0-9a-f]{64}$/;

export const DEFAULT_TAG = 'latest';

export function parseImageRef(text: string): ImageRef {
  const input = text.trim();
  const bad = (why: string) =>
    userError('E_BAD_REF', `invalid image reference "${text}": ${why}`, {
      hint: 'use NAME:TAG (e.g. pytorch:24.05) or sha256:<digest>; see `strata images`',
    });
  if (!input) throw bad('it is empty');
  if (DIGEST_RE.test(input)) return { digest: input };
  const { name: rest, tag, digest } = splitTagAndDigest(input, bad);
  if (!NAME_RE.test(rest)) throw bad(`"${rest}" is not a valid name (lowercase letters, digits, and . _ - / between them)`);
  return { name: rest, tag: tag ?? (digest ? undefined : DEFAULT_TAG), digest };
}

/** `NAME[:TAG][@DIGEST]` → its parts, tag and digest checked (a `:` before the last `/` is a port). */
export function splitTagAndDigest(text: string, bad: (why: string) => Error): { name: string; tag?: string; digest?: string } {
  let rest = text;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST_RE.test(digest)) throw bad(`"${digest}" is not a sha256 digest`);
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG_RE.test(tag)) throw bad(`"${tag}" is not a valid tag`);
  }
  return { name: rest, tag, digest };
}

export const formatRef = (ref: ImageRef) =>
  ref.name ? `${ref.name}${ref.tag ? `:${ref.tag}` : ''}${ref.digest ? `@${ref.digest}` : ''}` : (ref.digest ?? '');

export function parseTagRef(text: string): { name: string; tag: string } {
  const ref = parseImageRef(text);
  if (!ref.name || ref.digest) {
    throw userError('E_BAD_REF', `"${text}" is not a NAME:TAG`, { hint: 'give a name and tag, e.g. --tag pytorch:24.05' });
  }
  return { name: ref.name, tag: ref.tag ?? DEFAULT_TAG };
}
