import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { StrataError } from '../../src/errors.js';
import { CONFIG_MEDIA_TYPE, DIFF_ID_ANNOTATION, MANIFEST_MEDIA_TYPE } from '../../src/store/image.js';
import { LAYER_MEDIA_TYPES } from '../../src/store/layout.js';
import { Store, closeMatches, editDistance } from '../../src/store/store.js';

// The store layout (src/store/layout.ts), written by hand:
//   blobs/sha256/<hex>  manifests and configs;  tags/<name>/@<tag>  "sha256:<hex>\n"

const digest = (seed: string) => `sha256:${seed.repeat(64).slice(0, 64)}`;
const hex = (d: string) => d.slice('sha256:'.length);

let dir: string;
let root: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'strata-store-'));
  root = join(dir, 'store');
  mkdirSync(root);
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

function write(path: string, text: string) {
  mkdirSync(dirname(join(root, path)), { recursive: true });
  writeFileSync(join(root, path), text);
}
const writeBlob = (d: string, value: unknown) => write(`blobs/sha256/${hex(d)}`, typeof value === 'string' ? value : JSON.stringify(value));
const writeTag = (name: string, tag: string, text: string) => write(`tags/${name}/@${tag}`, text);

const CONFIG = digest('c');
const LAYER1 = digest('1');
const LAYER2 = digest('2');
const MANIFEST = digest('e');

function manifest(layers = [LAYER1, LAYER2]) {
  return {
    schemaVersion: 2,
    mediaType: MANIFEST_MEDIA_TYPE,
    config: { mediaType: CONFIG_MEDIA_TYPE, digest: CONFIG, size: 100 },
    layers: layers.map((d, i) => ({
      mediaType: LAYER_MEDIA_TYPES.squashfs as string,
      digest: d,
      size: 4096 * (i + 1),
      annotations: { [DIFF_ID_ANNOTATION]: digest(String.fromCharCode(0x61 + i)) },
    })),
  };
}

const imageConfig = { architecture: 'amd64', os: 'linux', config: { Env: ['PATH=/usr/bin'], WorkingDir: '/w' }, rootfs: { type: 'layers', diff_ids: [] } };

/** A complete image tagged pytorch:24.05. */
function seedImage(name = 'pytorch', tag = '24.05') {
  writeBlob(CONFIG, imageConfig);
  writeBlob(MANIFEST, manifest());
  writeTag(name, tag, `${MANIFEST}\n`);
}

async function rejection(promise: Promise<unknown>): Promise<StrataError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(StrataError);
    return error as StrataError;
  }
  throw new Error('expected a StrataError');
}

describe('Store.resolve: registry images in Pyxis syntax', () => {
  const OTHER = digest('f');
  test('nvcr.io#nvidia/pytorch:24.05-py3 finds the image `strata import docker://nvcr.io/...` stored', async () => {
    seedImage('nvcr.io/nvidia/pytorch', '24.05-py3');
    for (const text of ['nvcr.io#nvidia/pytorch:24.05-py3', 'docker://nvcr.io/nvidia/pytorch:24.05-py3', 'someone@nvcr.io#nvidia/pytorch:24.05-py3']) {
      await expect(new Store(root, 'alice').resolve(text)).resolves.toBe(MANIFEST);
    }
  });

  test("a user's own import is found when the site has none; a site image of the same name wins", async () => {
    writeBlob(OTHER, manifest());
    writeTag('~alice/ubuntu', '24.04', OTHER);
    await expect(new Store(root, 'alice').resolve('docker.io#ubuntu:24.04')).resolves.toBe(OTHER);
    await expect(new Store(root, 'alice').resolve('ubuntu:24.04')).resolves.toBe(OTHER);
    // bob does not see alice's
    expect((await rejection(new Store(root, 'bob').resolve('ubuntu:24.04'))).code).toBe('E_UNKNOWN_IMAGE');
    seedImage('ubuntu', '24.04');
    await expect(new Store(root, 'alice').resolve('ubuntu:24.04')).resolves.toBe(MANIFEST);
  });

  test('an unknown registry image names what the user typed', async () => {
    const error = await rejection(new Store(root, 'alice').resolve('nvcr.io#nvidia/pytorch:99'));
    expect(error.code).toBe('E_UNKNOWN_IMAGE');
    expect(error.message).toContain('unknown image "nvcr.io#nvidia/pytorch:99"');
  });
});

describe('Store.resolve', () => {
  test('a tag resolves to the digest in its tag file', async () => {
    seedImage();
    await expect(new Store(root).resolve('pytorch:24.05')).resolves.toBe(MANIFEST);
  });

  test('a name without a tag resolves @latest', async () => {
    seedImage('pytorch', 'latest');
    await expect(new Store(root).resolve('pytorch')).resolves.toBe(MANIFEST);
  });

  test('nested names map to nested tag directories', async () => {
    writeBlob(MANIFEST, manifest());
    writeTag('nvidia/cuda', '12.4', MANIFEST);
    await expect(new Store(root).resolve('nvidia/cuda:12.4')).resolves.toBe(MANIFEST);
  });

  test('a digest resolves to itself when its manifest is in the store', async () => {
    seedImage();
    await expect(new Store(root).resolve(MANIFEST)).resolves.toBe(MANIFEST);
  });

  test('a digest that is not in the store is an unknown image (user error)', async () => {
    seedImage();
    const error = await rejection(new Store(root).resolve(digest('9')));
    expect(error.kind).toBe('user');
    expect(error.code).toBe('E_UNKNOWN_IMAGE');
    expect(error.message).toContain(digest('9'));
  });

  test('an unknown tag is a user error that suggests the same name with another tag', async () => {
    seedImage();
    const error = await rejection(new Store(root).resolve('pytorch:24.04'));
    expect(error.kind).toBe('user');
    expect(error.code).toBe('E_UNKNOWN_IMAGE');
    expect(error.message).toBe('unknown image "pytorch:24.04" (did you mean "pytorch:24.05"?)');
    expect(error.hint).toContain('strata images');
  });

  test('a misspelt name gets a suggestion too', async () => {
    seedImage();
    const error = await rejection(new Store(root).resolve('pytroch:24.05'));
    expect(error.message).toContain('did you mean "pytorch:24.05"');
  });

  test('no suggestion when nothing is close', async () => {
    seedImage();
    const error = await rejection(new Store(root).resolve('tensorflow:2.16'));
    expect(error.code).toBe('E_UNKNOWN_IMAGE');
    expect(error.message).toBe('unknown image "tensorflow:2.16"');
  });

  test('an unknown image in an empty store (no tags directory) is a user error', async () => {
    const error = await rejection(new Store(root).resolve('pytorch:24.05'));
    expect(error.kind).toBe('user');
    expect(error.code).toBe('E_UNKNOWN_IMAGE');
  });

  test('a name whose parent is a file (ENOTDIR) is an unknown image, not a store fault', async () => {
    seedImage();
    write('tags/notadir', 'x');
    const error = await rejection(new Store(root).resolve('notadir/img:1'));
    expect(error.kind).toBe('user');
    expect(error.code).toBe('E_UNKNOWN_IMAGE');
  });

  test('the tag file content is trimmed', async () => {
    writeBlob(MANIFEST, manifest());
    writeTag('img', '1', `  ${MANIFEST}  \n\n`);
    await expect(new Store(root).resolve('img:1')).resolves.toBe(MANIFEST);
  });

  test('a missing store root is a node fault, not an unknown image', async () => {
    const error = await rejection(new Store(join(dir, 'not-mounted')).resolve('pytorch:24.05'));
    expect(error.kind).toBe('node');
    expect(error.code).toBe('E_STORE_UNREACHABLE');
    expect(error.message).toContain(join(dir, 'not-mounted'));
  });

  test('a missing store root is a node fault for a digest too', async () => {
    const error = await rejection(new Store(join(dir, 'not-mounted')).resolve(MANIFEST));
    expect(error.kind).toBe('node');
    expect(error.code).toBe('E_STORE_UNREACHABLE');
  });

  test('an invalid reference is a user error before the store is touched', async () => {
    const error = await rejection(new Store(join(dir, 'not-mounted')).resolve('Bad:Ref'));
    expect(error.kind).toBe('user');
    expect(error.code).toBe('E_BAD_REF');
  });
});

describe('Store.open', () => {
  test('reads the manifest, the config and the layer paths (base layer first)', async () => {
    seedImage();
    const image = await new Store(root).open('pytorch:24.05');
    expect(image.ref).toBe('pytorch:24.05');
    expect(image.manifestDigest).toBe(MANIFEST);
    expect(image.config).toEqual(imageConfig);
    expect(image.layers).toEqual([
      { digest: LAYER1, size: 4096, format: 'squashfs', path: join(root, 'layers/sha256', `${hex(LAYER1)}.sqfs`), diffId: digest('a') },
      { digest: LAYER2, size: 8192, format: 'squashfs', path: join(root, 'layers/sha256', `${hex(LAYER2)}.sqfs`), diffId: digest('b') },
    ]);
  });

  test('a pinned digest wins: the tag is not read (it may have moved)', async () => {
    writeBlob(CONFIG, imageConfig);
    writeBlob(MANIFEST, manifest());
    writeTag('pytorch', '24.05', `${digest('f')}\n`); // retagged since submission
    const image = await new Store(root).open('pytorch:24.05', MANIFEST);
    expect(image.manifestDigest).toBe(MANIFEST);
    expect(image.ref).toBe('pytorch:24.05');
  });

  test('an empty ref with a pinned digest reports the digest as ref', async () => {
    seedImage();
    expect((await new Store(root).open('', MANIFEST)).ref).toBe(MANIFEST);
  });

  test('a manifest that is not JSON is a damaged image (user error)', async () => {
    writeBlob(MANIFEST, '{"schemaVersion": 2, "layers": [');
    writeTag('pytorch', '24.05', MANIFEST);
    const error = await rejection(new Store(root).open('pytorch:24.05'));
    expect(error.kind).toBe('user');
    expect(error.code).toBe('E_IMAGE_BROKEN');
    expect(error.message).toContain('pytorch:24.05');
    expect(error.message).toContain('not valid JSON');
  });

  test.each([
    ['null', null],
    ['a JSON number', 42],
    ['no layers list', { ...manifest(), layers: undefined }],
    ['no config', { ...manifest(), config: undefined }],
    ['a config without a digest', { ...manifest(), config: { mediaType: CONFIG_MEDIA_TYPE, size: 1 } }],
  ])('a manifest with %s is a damaged image', async (_, value) => {
    writeBlob(MANIFEST, JSON.stringify(value));
    const error = await rejection(new Store(root).open(MANIFEST));
    expect(error.kind).toBe('user');
    expect(error.code).toBe('E_IMAGE_BROKEN');
    expect(error.message).toContain('not an image manifest');
  });

  test('a layer without a valid digest is a damaged image', async () => {
    const bad = manifest();
    bad.layers[1].digest = 'sha256:xyz';
    writeBlob(MANIFEST, bad);
    const error = await rejection(new Store(root).open(MANIFEST));
    expect(error.code).toBe('E_IMAGE_BROKEN');
    expect(error.message).toContain('no valid digest');
  });

  test('a layer of an unsupported type (e.g. a tar.gz) is a damaged image naming the type', async () => {
    const bad = manifest();
    bad.layers[0].mediaType = 'application/vnd.oci.image.layer.v1.tar+gzip';
    writeBlob(MANIFEST, bad);
    const error = await rejection(new Store(root).open(MANIFEST));
    expect(error.code).toBe('E_IMAGE_BROKEN');
    expect(error.message).toContain('application/vnd.oci.image.layer.v1.tar+gzip');
  });

  test('a config that is not JSON is a damaged image', async () => {
    writeBlob(MANIFEST, manifest());
    writeBlob(CONFIG, 'not json');
    const error = await rejection(new Store(root).open(MANIFEST));
    expect(error.kind).toBe('user');
    expect(error.code).toBe('E_IMAGE_BROKEN');
  });

  test('a pinned digest whose manifest was removed is an unknown image (user error)', async () => {
    const error = await rejection(new Store(root).open('pytorch:24.05', MANIFEST));
    expect(error.kind).toBe('user');
    expect(error.code).toBe('E_UNKNOWN_IMAGE');
    expect(error.message).toContain('pytorch:24.05');
  });

  test('a pinned digest with the store root missing is a node fault', async () => {
    const error = await rejection(new Store(join(dir, 'gone')).open('pytorch:24.05', MANIFEST));
    expect(error.kind).toBe('node');
    expect(error.code).toBe('E_STORE_UNREACHABLE');
  });
});

describe('Store.listTags', () => {
  test('lists nested names, sorted by name:tag', async () => {
    writeTag('pytorch', '24.05', `${digest('1')}\n`);
    writeTag('pytorch', '23.10', `${digest('2')}\n`);
    writeTag('nvidia/cuda', '12.4', `${digest('3')}\n`);
    writeTag('a/b/c', 'x', digest('4'));
    expect(await new Store(root).listTags()).toEqual([
      { name: 'a/b/c', tag: 'x', digest: digest('4') },
      { name: 'nvidia/cuda', tag: '12.4', digest: digest('3') },
      { name: 'pytorch', tag: '23.10', digest: digest('2') },
      { name: 'pytorch', tag: '24.05', digest: digest('1') },
    ]);
  });

  test('a name directory can hold both tags and deeper names', async () => {
    writeTag('team', 'v1', digest('1'));
    writeTag('team/sub', 'v2', digest('2'));
    const found = (await new Store(root).listTags()).map((e) => `${e.name}:${e.tag}`);
    expect(found.sort()).toEqual(['team/sub:v2', 'team:v1']);
  });

  test('skips files that are not tags, tags at the top level, and tag files without a digest', async () => {
    writeTag('good', '1', digest('1'));
    writeTag('bad', '1', 'garbage\n');
    writeTag('empty', '1', '');
    write('tags/@toplevel', digest('2'));
    write('tags/good/README', 'not a tag');
    write('tags/good/.@1.partial', digest('3'));
    expect(await new Store(root).listTags()).toEqual([{ name: 'good', tag: '1', digest: digest('1') }]);
  });

  test('no tags directory means no images', async () => {
    expect(await new Store(root).listTags()).toEqual([]);
    expect(await new Store(join(dir, 'absent')).listTags()).toEqual([]);
  });
});

describe('closeMatches', () => {
  const known = ['pytorch:24.05', 'pytorch:23.10', 'pytorch:22.01', 'pytorch:21.01', 'tensorflow:2.16', 'jax:0.4'];

  test('the same name with other tags comes first, at most three', () => {
    expect(closeMatches('pytorch:24.04', known)).toEqual(['pytorch:24.05', 'pytorch:23.10', 'pytorch:22.01']);
  });

  test('a small typo in the name matches', () => {
    expect(closeMatches('pytroch:24.05', known)).toEqual(['pytorch:24.05']);
    expect(closeMatches('tensorflw:2.16', known)).toEqual(['tensorflow:2.16']);
  });

  test('an exact tag of another name with the same tag is not suggested when too far', () => {
    expect(closeMatches('caffe:2.16', known)).toEqual([]);
  });

  test('nearer candidates come first', () => {
    expect(closeMatches('jaxx:0.4', ['jaxxxx:0.4', 'jax:0.4'])).toEqual(['jax:0.4', 'jaxxxx:0.4']);
  });

  test('the tolerance grows with the length of the name (a quarter, at least 2)', () => {
    const long = 'averyveryverylongimagename:1'; // 28 characters: up to 7 edits
    expect(closeMatches(long, ['averyveryverylongimagenXXXXX:1'])).toHaveLength(1);
    expect(closeMatches(long, ['averyveryverylongimXXXXXXXXX:1'])).toEqual([]);
    expect(closeMatches('ab:1', ['xy:1'])).toEqual(['xy:1']);
    expect(closeMatches('ab:1', ['xyz:1'])).toEqual([]);
  });

  test('nothing known, nothing suggested', () => {
    expect(closeMatches('pytorch:1', [])).toEqual([]);
  });
});

describe('editDistance', () => {
  test.each([
    ['', '', 0],
    ['abc', '', 3],
    ['', 'abc', 3],
    ['abc', 'abc', 0],
    ['kitten', 'sitting', 3],
    ['pytorch', 'pytroch', 2],
    ['flaw', 'lawn', 2],
    ['a', 'b', 1],
  ])('editDistance(%j, %j) = %d', (a, b, distance) => {
    expect(editDistance(a, b)).toBe(distance);
    expect(editDistance(b, a)).toBe(distance);
  });
});

describe('Store reads kept between jobs (src/store/text-cache.ts)', () => {
  const OTHER = digest('f');

  test('a tag moved to another image, by rename or rewritten in place, is read afresh', async () => {
    seedImage();
    writeBlob(OTHER, manifest([LAYER2]));
    const store = new Store(root);
    await expect(store.resolve('pytorch:24.05')).resolves.toBe(MANIFEST);
    // How strata publishes a tag: a new file renamed over the old one.
    write('tags/pytorch/@24.05.new', `${OTHER}\n`);
    renameSync(join(root, 'tags/pytorch/@24.05.new'), join(root, 'tags/pytorch/@24.05'));
    await expect(store.resolve('pytorch:24.05')).resolves.toBe(OTHER);
    // Rewritten in place, same length, same inode.
    writeTag('pytorch', '24.05', `${MANIFEST}\n`);
    await expect(store.resolve('pytorch:24.05')).resolves.toBe(MANIFEST);
    expect((await store.open('pytorch:24.05')).layers).toHaveLength(2);
  });

  test('a manifest read once and then removed or replaced by a link is not served from memory', async () => {
    seedImage();
    await new Store(root).open('pytorch:24.05');
    const blob = join(root, `blobs/sha256/${hex(MANIFEST)}`);
    rmSync(blob);
    expect((await rejection(new Store(root).open('pytorch:24.05'))).code).toBe('E_UNKNOWN_IMAGE');
    writeFileSync(join(dir, 'elsewhere'), JSON.stringify(manifest()));
    symlinkSync(join(dir, 'elsewhere'), blob);
    expect((await rejection(new Store(root).open('pytorch:24.05'))).code).toBe('E_IMAGE_UNSAFE');
  });

  test('a manifest damaged after it was read fails the next job as damaged', async () => {
    seedImage();
    await new Store(root).open('pytorch:24.05');
    writeBlob(MANIFEST, '{"schemaVersion": 2, "layers": "gone"}');
    expect((await rejection(new Store(root).open('pytorch:24.05'))).code).toBe('E_IMAGE_BROKEN');
  });
});
