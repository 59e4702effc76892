// `oci:DIR[:REF]` and `oci-archive:FILE[:REF]`: an OCI image layout (image-spec image-layout.md),
// as a directory or as a tar of one. REF picks an index.json entry by its
// `org.opencontainers.image.ref.name` annotation; without REF the index must hold one image.

import { userError } from '../../errors.js';
import { hexOf } from '../layout.js';
import { parseManifest, DIGEST_RE, type BlobRef } from './manifest.js';
import { resolveFromManifest, type BlobFetcher } from './resolve.js';
import { openTree, type FileTree } from './file-tree.js';
import type { ImageSource, Platform, SourceImage } from './types.js';
import { verifyBytes } from './verify.js';

const REF_NAME = 'org.opencontainers.image.ref.name';

export class OciLayoutSource implements ImageSource {
  private tree?: FileTree;
  constructor(
    private readonly path: string,
    private readonly kind: 'dir' | 'archive',
    private readonly ref: string | undefined,
    private readonly platform: Platform,
  ) {}

  get description() {
    return `${this.kind === 'dir' ? 'oci' : 'oci-archive'}:${this.path}${this.ref ? `:${this.ref}` : ''}`;
  }

  async resolve(): Promise<SourceImage> {
    const tree = (this.tree = await openTree(this.path, this.kind));
    const what = this.description;
    if (!(await tree.exists('oci-layout'))) {
      throw userError('E_BAD_SOURCE', `${what} is not an OCI image layout (no oci-layout file)`, {
        hint: this.kind === 'dir' ? 'point at the layout directory (it holds oci-layout, index.json, blobs/)' : 'give an archive of an OCI layout (skopeo copy ... oci-archive:FILE)',
      });
    }
    const blobPath = (ref: BlobRef) => `blobs/sha256/${hexOf(ref.digest)}`;
    const fetcher: BlobFetcher = {
      what,
      manifest: async (ref) => ({ bytes: await tree.read(blobPath(ref)), mediaType: ref.mediaType }),
      blob: (ref) => tree.read(blobPath(ref)),
      stream: async (ref) => {
        if (!(await tree.exists(blobPath(ref)))) throw userError('E_BAD_SOURCE', `${what} lacks layer blob ${ref.digest}`, { hint: 'the layout is incomplete; copy it again' });
        return tree.stream(blobPath(ref));
      },
    };
    const index = parseManifest(await tree.read('index.json'), undefined, `index.json of ${what}`);
    if (index.kind !== 'index') throw userError('E_BAD_SOURCE', `index.json of ${what} is not an image index`, { hint: 'the layout is damaged' });
    const entries = index.manifests;
    let entry;
    if (this.ref && DIGEST_RE.test(this.ref)) entry = entries.find((e) => e.digest === this.ref);
    else if (this.ref) entry = entries.find((e) => e.annotations?.[REF_NAME] === this.ref);
    else if (entries.length === 1) entry = entries[0];
    const names = entries.map((e) => e.annotations?.[REF_NAME]).filter(Boolean);
    if (!entry) {
      throw userError('E_UNKNOWN_IMAGE', this.ref ? `${what}: no image named "${this.ref}" in the layout` : `${what} holds ${entries.length} images; say which`, {
        hint: names.length ? `use one of: ${names.map((n) => `${this.kind === 'dir' ? 'oci' : 'oci-archive'}:${this.path}:${n}`).join(', ')}` : 'name one by digest (oci:DIR:sha256:...)',
      });
    }
    const document = await fetcher.manifest(entry);
    verifyBytes(document.bytes, entry.digest, `manifest ${entry.digest} of ${what}`);
    return resolveFromManifest(fetcher, { ...document, digest: entry.digest }, this.platform);
  }

  async close() {
    await this.tree?.close();
  }
}
