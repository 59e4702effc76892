// Image references as users type them: `name[:tag]`, `name@sha256:<hex>`, or a bare `sha256:<hex>`.
// Pure. Names follow the OCI distribution grammar, with an optional registry host first, and an
// optional user namespace before that: `~USER/name:tag` (user imports), `~/name:tag` (your own).
// `~` is outside the OCI grammar, so no image an admin names can collide with a user's.

import { printable, userError } from '../errors.js';

export interface ImageRef {
  name?: string;
  tag?: string;
  digest?: string;
}

const COMPONENT = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
const HOST = '(?:[a-zA-Z0-9-]+(?:\\.[a-zA-Z0-9-]+)*(?::[0-9]+)?)';
/** Login names as sites spell them (POSIX portable set, plus upper case). */
export const USER_NAME_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}$/;
const NAMESPACE = '~[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}/';
const NAME_RE = new RegExp(`^(?:${NAMESPACE})?(?:${HOST}/)?${COMPONENT}(?:/${COMPONENT})*$`);
const TAG_RE = /^[\w][\w.-]{0,127}$/;
const DIGEST_RE = /^sha256:[0-9a-f]{64}$/;

export const DEFAULT_TAG = 'latest';

/**
 * `self`: the user that `~/` stands for (the caller, or the job's user in a prolog); without one,
 * `~/` is an error.
 */
export function parseImageRef(text: string, self?: string): ImageRef {
  const bad = (why: string) =>
    userError('E_BAD_REF', printable(`invalid image reference "${text}": ${why}`), {
      hint: text.trim().startsWith('/')
        ? 'a path is not an image; if your shell turned ~/ into your home directory, write --container-image=~/NAME:TAG (with =) or quote it'
        : 'use NAME:TAG (e.g. pytorch:24.05), ~/NAME:TAG for your own imports, or sha256:<digest>; see `strata images`',
    });
  let input = text.trim();
  if (!input) throw bad('it is empty');
  if (input.startsWith('~/')) {
    if (!self) throw bad('~/ (your own images) means nothing here: name the user, as in ~USER/NAME:TAG');
    input = `~${self}/${input.slice(2)}`;
  }
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

/** The user whose namespace `name` is in (`~alice/x` → alice), or undefined for the site's names. */
export function namespaceOf(name: string): string | undefined {
  return name.startsWith('~') ? name.slice(1, name.indexOf('/')) : undefined;
}

export function parseTagRef(text: string, self?: string): { name: string; tag: string } {
  const ref = parseImageRef(text, self);
  if (!ref.name || ref.digest) {
    throw userError('E_BAD_REF', `"${text}" is not a NAME:TAG`, { hint: 'give a name and tag, e.g. --tag pytorch:24.05' });
  }
  return { name: ref.name, tag: ref.tag ?? DEFAULT_TAG };
}
