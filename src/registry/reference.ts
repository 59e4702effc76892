// `docker://[REGISTRY/]REPO[:TAG|@DIGEST]` the way docker resolves it: a first component with a
// `.` or `:`, or `localhost`, is a registry host; otherwise the image is on Docker Hub, where a
// one-component name lives under `library/` and the API is at registry-1.docker.io. Pure.

import { userError } from '../errors.js';
import { splitTagAndDigest } from '../store/ref.js';

export interface RegistryRef {
  /** Host as written (`docker.io` for Docker Hub), with the port if any: the credentials key. */
  registry: string;
  /** Where the API is: `registry-1.docker.io` for Docker Hub. */
  apiHost: string;
  /** Repository path, e.g. `library/ubuntu`. */
  repository: string;
  tag?: string;
  digest?: string;
}

export const DOCKER_HUB = 'docker.io';
const DOCKER_HUB_API = 'registry-1.docker.io';
const HUB_ALIASES = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io']);

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const HOST = /^(?:[a-zA-Z0-9-]+(?:\.[a-zA-Z0-9-]+)*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?$/;

/** `registry`: the host given apart (enroot's `REGISTRY#IMAGE`), so the whole of `text` is the repository. */
export function parseRegistryRef(text: string, given: { registry?: string } = {}): RegistryRef {
  const bad = (why: string) =>
    userError('E_BAD_REF', `invalid image reference "docker://${text}": ${why}`, {
      hint: 'use docker://[REGISTRY/]REPO[:TAG|@sha256:DIGEST], e.g. docker://nvcr.io/nvidia/pytorch:24.05-py3',
    });
  const trimmed = text.replace(/^\/\//, '');
  if (!trimmed) throw bad('it is empty');
  const { name: rest, tag: givenTag, digest } = splitTagAndDigest(trimmed, bad);
  let tag = givenTag;
  const slash = rest.indexOf('/');
  const first = slash < 0 ? '' : rest.slice(0, slash);
  const isHost = given.registry === undefined && first !== '' && (first.includes('.') || first.includes(':') || first === 'localhost' || first !== first.toLowerCase());
  let registry = given.registry ?? (isHost ? first : DOCKER_HUB);
  let repository = isHost ? rest.slice(slash + 1) : rest;
  if (isHost && !HOST.test(registry)) throw bad(`"${registry}" is not a registry host`);
  if (HUB_ALIASES.has(registry)) registry = DOCKER_HUB;
  if (registry === DOCKER_HUB && !repository.includes('/')) repository = `library/${repository}`;
  if (!repository || !repository.split('/').every((part) => COMPONENT.test(part))) {
    throw bad(`"${repository}" is not a valid repository name (lowercase letters, digits, and . _ - / between them)`);
  }
  if (!tag && !digest) tag = 'latest';
  return { registry, apiHost: registry === DOCKER_HUB ? DOCKER_HUB_API : registry, repository, tag, digest };
}

export const formatRegistryRef = (ref: RegistryRef) =>
  `${ref.registry}/${ref.repository}${ref.tag ? `:${ref.tag}` : ''}${ref.digest ? `@${ref.digest}` : ''}`;

/** The store tag an import gets when none is given: the name as a user types it, without the host for Docker Hub. */
export function defaultStoreTag(ref: RegistryRef): string {
  const name = ref.registry === DOCKER_HUB ? ref.repository.replace(/^library\//, '') : `${ref.registry.toLowerCase()}/${ref.repository}`;
  return `${name}:${ref.tag ?? 'latest'}`;
}

/** Plain HTTP only when asked for, or for a registry on this machine (as docker treats localhost). */
export function usesPlainHttp(ref: RegistryRef, insecure: boolean): boolean {
  if (insecure) return true;
  const host = ref.apiHost.replace(/:\d+$/, '');
  return host === 'localhost' || host === '127.0.0.1' || host === '[::1]';
}
