// What a user may give as an image (`--container-image`, `strata resolve`, `strata prolog --image`),
// in the syntax Pyxis users know as well as strata's own. Pure.
//   - strata's store names: `~USER/NAME:TAG`, `~/NAME:TAG`, `sha256:<hex>` (never a registry);
//   - a squashfs file: anything starting with `/` or `.` (Pyxis's other form);
//   - a registry image as enroot spells it, `[docker://][USER@][REGISTRY#]IMAGE[:TAG][@DIGEST]`,
//     or as docker spells it, `[docker://][USER@][REGISTRY/]IMAGE[:TAG][@DIGEST]`. USER picks the
//     login in the user's credentials, as enroot does. Such a name is first looked up in the store
//     under the name `strata import docker://...` gives it (`ubuntu:24.04`,
//     `nvcr.io/nvidia/pytorch:24.05-py3`), which keeps `pytorch:24.05`-style site names working.

import { isStrataError, printable, userError } from '../errors.js';
import { parseImageRef } from '../store/ref.js';
import { DOCKER_HUB, defaultStoreTag, parseRegistryRef, type RegistryRef } from './reference.js';

export type ImageArgument =
  | { kind: 'store'; text: string }
  | { kind: 'file'; path: string }
  | {
      kind: 'registry';
      ref: RegistryRef;
      /** `USER@`: the login whose credentials are used. */
      login?: string;
      /** The store NAME:TAG this image has in the site's names (and, under ~USER/, in a user's). */
      storeName: string;
      /** `docker://REF` for `strata import` and messages. */
      source: string;
    };

/** A hostile argument can be kilobytes long: messages quote at most 200 characters of it. */
const cut = (text: string) => (text.length > 200 ? `${text.slice(0, 200)}...` : text);
const DIGEST_SUFFIX = /@(sha256:[0-9a-f]{64})$/;
/** enroot's login characters (docker.sh `reg_user`), '@' included: a login may be an e-mail address. */
const LOGIN_RE = /^[A-Za-z0-9_.!~*'()%;:&=+$,@-]+$/;
const ENROOT_HOST_RE = /^(?:[a-zA-Z0-9-]+(?:\.[a-zA-Z0-9-]+)*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?$/;

export function parseImageArgument(input: string): ImageArgument {
  const text = input.trim();
  const bad = (why: string) =>
    userError('E_BAD_REF', printable(`invalid image reference "${cut(text)}": ${cut(why)}`), {
      hint: 'use NAME:TAG from `strata images`, a registry image as [USER@][REGISTRY#]IMAGE[:TAG] (e.g. nvcr.io#nvidia/pytorch:24.05-py3) or docker://..., or ~/NAME:TAG for your own imports',
    });
  if (!text) throw bad('it is empty');
  if (/[\x00-\x1f\x7f\s]/.test(text)) throw bad('it contains a space or a control character');
  if (text.length > 1024) throw bad('it is longer than 1024 characters');
  if (text.startsWith('~') || /^sha256:/.test(text)) return { kind: 'store', text };
  if (text.startsWith('/') || text.startsWith('.')) return { kind: 'file', path: text };
  if (/^dockerd:\/\//.test(text) || /^podman:\/\//.test(text)) {
    throw userError('E_BAD_REF', printable(`"${text}" names an image in a local ${text.split(':')[0]} daemon, which compute nodes cannot reach`), {
      hint: 'push it to a registry and use docker://REGISTRY/IMAGE:TAG, or import a saved archive with `strata import docker-archive:FILE`',
    });
  }
  let rest = text.replace(/^docker:\/\//, '');
  if (/^[a-z][a-z0-9+.-]*:\/\//.test(rest)) throw bad(`the scheme ${rest.split('://')[0]}:// is not supported (only docker://)`);

  let digest: string | undefined;
  const pinned = DIGEST_SUFFIX.exec(rest);
  if (pinned) {
    digest = pinned[1];
    rest = rest.slice(0, pinned.index);
  }
  // USER@: the last '@' (a login may contain '@'; registry and image names cannot).
  let login: string | undefined;
  const at = rest.lastIndexOf('@');
  if (at >= 0) {
    login = rest.slice(0, at);
    rest = rest.slice(at + 1);
    if (!LOGIN_RE.test(login)) throw bad(login ? `"${login}" is not a registry login` : 'nothing before "@"; write USER@ or drop the "@"');
  }
  const at2 = rest.indexOf('#');
  // enroot's REGISTRY#IMAGE: the part before '#' is always a registry host, even without a '.'.
  const registry = at2 >= 0 ? rest.slice(0, at2) : undefined;
  if (registry !== undefined && !ENROOT_HOST_RE.test(registry)) throw bad(`"${registry}" is not a registry host`);
  let ref: RegistryRef;
  try {
    ref = parseRegistryRef(`${at2 >= 0 ? rest.slice(at2 + 1) : rest}${digest ? `@${digest}` : ''}`, { registry });
  } catch (error) {
    // Say what is wrong about what the user typed, not about the docker:// form it became.
    const why = (error as Error).message.split('": ').slice(1).join('": ');
    throw why ? bad(why) : error;
  }
  return { kind: 'registry', ref, login, storeName: storeNameOf(ref), source: `docker://${sourceText(ref)}` };
}

/**
 * The NAME:TAG an image from a registry is stored as: `strata import`'s default name, with the
 * digest as the tag (`sha256-<hex>`) when the reference pins one, so that the same reference finds
 * the same image again (the store's own manifest digest differs from the registry's).
 */
export function storeNameOf(ref: RegistryRef): string {
  const byTag = defaultStoreTag(ref);
  return ref.digest ? `${byTag.slice(0, byTag.lastIndexOf(':'))}:${ref.digest.replace(':', '-')}` : byTag;
}

function sourceText(ref: RegistryRef): string {
  const host = ref.registry === DOCKER_HUB ? 'docker.io' : ref.registry;
  return `${host}/${ref.repository}${ref.digest ? `@${ref.digest}` : `:${ref.tag ?? 'latest'}`}`;
}

/**
 * The store names `text` may stand for, in the order they are tried: strata's own meaning of the
 * text, the name an import of the registry image gets among the site's names, then the same under
 * `self`'s own namespace (where an import on first use puts it). A file has none.
 */
export function storeNamesFor(text: string, self?: string): string[] {
  const arg = parseImageArgument(text);
  if (arg.kind === 'store') return [arg.text];
  if (arg.kind === 'file') return [];
  const names: string[] = [];
  if (isStoreName(text.trim())) names.push(text.trim());
  names.push(arg.storeName);
  if (self) names.push(`~${self}/${arg.storeName}`);
  return [...new Set(names)];
}

function isStoreName(text: string): boolean {
  try {
    parseImageRef(text);
    return true;
  } catch (error) {
    if (isStrataError(error) && error.code === 'E_BAD_REF') return false;
    throw error;
  }
}
