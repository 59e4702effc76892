// The seam between where an image comes from (a registry, an OCI layout, a docker save archive)
// and the store import: a source yields one platform's config and its layer blobs as streams.
// Sources say what each blob must hash to; the import verifies before it publishes anything.

export interface SourceLayer {
  /** Digest of the blob as stored at the source (compressed), when the source names one. */
  digest?: string;
  /** Media type at the source (informational: the compression is detected from the bytes). */
  mediaType: string;
  /** Bytes of the blob at the source, when known (progress). */
  size?: number;
  /** The raw blob bytes (compressed or not). Each call opens a fresh stream. */
  open(): Promise<AsyncIterable<Uint8Array>>;
}

export interface SourceImage {
  /** The source's manifest digest, when it has one (recorded as an annotation). */
  manifestDigest?: string;
  /** The image config exactly as published (its bytes hash to configDigest). */
  configBytes: Buffer;
  configDigest: string;
  /** Base layer first. */
  layers: SourceLayer[];
  /** A default NAME:TAG for the store, when the source names one (docker://, RepoTags). */
  suggestedTag?: string;
}

export interface ImageSource {
  /** For messages: `docker://host/repo:tag`, `oci:/path:ref`. */
  readonly description: string;
  /** Reads the manifest (choosing the platform in an index) and the config. */
  resolve(): Promise<SourceImage>;
  /** Releases open files. */
  close(): Promise<void>;
}

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}
