// `docker-archive:FILE[:NAME:TAG]`: what `docker save` (and skopeo's docker-archive:) writes — a
// tar with manifest.json ([{Config, RepoTags, Layers}]), the config, and one tar per layer. There
// are no layer digests; each layer is verified by its diff_id from the config, whose own digest is
// its file name.

import { userError } from '../../errors.js';
import { configDiffIds } from './manifest.js';
import { TarTree } from './file-tree.js';
import type { ImageSource, SourceImage } from './types.js';
import { digestOf, digestMismatch } from './verify.js';

interface ArchiveEntry {
  Config?: unknown;
  RepoTags?: unknown;
  Layers?: unknown;
}

export class DockerArchiveSource implements ImageSource {
  private tree?: TarTree;
  constructor(
    private readonly path: string,
    private readonly ref: string | undefined,
  ) {}

  get description() {
    return `docker-archive:${this.path}${this.ref ? `:${this.ref}` : ''}`;
  }

  async resolve(): Promise<SourceImage> {
    const what = this.description;
    const tree = (this.tree = await TarTree.open(this.path));
    if (!(await tree.exists('manifest.json'))) {
      throw userError('E_BAD_SOURCE', `${what} is not a docker save archive (no manifest.json)`, { hint: 'for an OCI layout archive use oci-archive:FILE' });
    }
    let entries: ArchiveEntry[];
    try {
      entries = JSON.parse((await tree.read('manifest.json')).toString('utf8'));
    } catch {
      throw userError('E_BAD_SOURCE', `manifest.json of ${what} is not valid JSON`, { hint: 'the archive is damaged; save it again' });
    }
    if (!Array.isArray(entries) || entries.length === 0) throw userError('E_BAD_SOURCE', `${what} holds no image`, { hint: 'save an image into it with docker save' });
    const tags = (entry: ArchiveEntry) => (Array.isArray(entry.RepoTags) ? entry.RepoTags.filter((t): t is string => typeof t === 'string') : []);
    const matches = (tag: string, wanted: string) => tag === wanted || tag === `docker.io/${wanted}` || tag === `docker.io/library/${wanted}` || tag === `${wanted}:latest`;
    const entry = this.ref ? entries.find((e) => tags(e).some((t) => matches(t, this.ref!))) : entries.length === 1 ? entries[0] : undefined;
    if (!entry) {
      const all = entries.flatMap(tags);
      throw userError('E_UNKNOWN_IMAGE', this.ref ? `${what}: no image tagged "${this.ref}" in the archive` : `${what} holds ${entries.length} images; say which`, {
        hint: all.length ? `use one of: ${all.map((t) => `docker-archive:${this.path}:${t}`).join(', ')}` : 'save one image per archive',
      });
    }
    if (typeof entry.Config !== 'string' || !Array.isArray(entry.Layers) || !entry.Layers.every((l) => typeof l === 'string')) {
      throw userError('E_BAD_SOURCE', `manifest.json of ${what} lacks Config or Layers`, { hint: 'the archive is damaged; save it again' });
    }
    const configBytes = await tree.read(entry.Config);
    const configDigest = digestOf(configBytes);
    // The config's name is its digest (`<hex>.json` or `blobs/sha256/<hex>`): check it when it is one.
    const named = /([0-9a-f]{64})(?:\.json)?$/.exec(entry.Config)?.[1];
    if (named && `sha256:${named}` !== configDigest) throw digestMismatch(`config ${entry.Config} of ${what}`, `sha256:${named}`, configDigest);
    const layerPaths = entry.Layers as string[];
    configDiffIds(configBytes, layerPaths.length, what);
    for (const layer of layerPaths) {
      if (!(await tree.exists(layer))) throw userError('E_BAD_SOURCE', `${what} lacks layer ${layer}`, { hint: 'the archive is incomplete; save it again' });
    }
    const first = tags(entry)[0];
    return {
      configBytes,
      configDigest,
      layers: await Promise.all(
        layerPaths.map(async (layer) => ({ mediaType: 'application/vnd.docker.image.rootfs.diff.tar', size: await tree.size(layer), open: async () => tree.stream(layer) })),
      ),
      suggestedTag: first?.replace(/^docker\.io\/(library\/)?/, ''),
    };
  }

  async close() {
    await this.tree?.close();
  }
}
