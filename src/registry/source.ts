// `docker://...` as an image source: the manifest by tag or digest (an index resolved to the
// platform), then the config and layer blobs, each checked against its digest by the importer.

import type { ImageSource, Platform, SourceImage } from '../store/sources/types.js';
import { MANIFEST_ACCEPT, type BlobRef } from '../store/sources/manifest.js';
import { resolveFromManifest, type BlobFetcher } from '../store/sources/resolve.js';
import { digestMismatch, digestOf, verifyBytes } from '../store/sources/verify.js';
import { RegistryClient, type RegistryClientOptions } from './client.js';
import { defaultStoreTag, formatRegistryRef, parseRegistryRef } from './reference.js';

export class RegistrySource implements ImageSource {
  private readonly client: RegistryClient;

  constructor(
    text: string,
    private readonly platform: Platform,
    options: RegistryClientOptions = {},
  ) {
    this.client = new RegistryClient(parseRegistryRef(text), options);
  }

  get description() {
    return `docker://${formatRegistryRef(this.client.ref)}`;
  }

  async resolve(): Promise<SourceImage> {
    const { ref } = this.client;
    const reference = ref.digest ?? ref.tag!;
    const top = await this.client.manifest(reference, MANIFEST_ACCEPT);
    const digest = digestOf(top.bytes);
    if (ref.digest) verifyBytes(top.bytes, ref.digest, `manifest of ${this.description}`);
    else if (top.digest && /^sha256:/.test(top.digest) && top.digest !== digest) throw digestMismatch(`manifest of ${this.description}`, top.digest, digest);
    const client = this.client;
    const fetcher: BlobFetcher = {
      what: this.description,
      manifest: async (entry: BlobRef) => {
        const document = await client.manifest(entry.digest, entry.mediaType || MANIFEST_ACCEPT);
        return { bytes: document.bytes, mediaType: document.mediaType };
      },
      blob: (entry) => client.blob(entry.digest),
      stream: (entry) => client.blobStream(entry.digest),
    };
    const image = await resolveFromManifest(fetcher, { bytes: top.bytes, mediaType: top.mediaType, digest }, this.platform);
    return { ...image, suggestedTag: defaultStoreTag(ref) };
  }

  async close() {}
}
