// The base image of a squashfs file given as an image that `--container-save=PATH` wrote: the
// file holds only the job's changes (a layer), and its mark (import/saved-marker.ts) names the
// job's image by manifest digest. The mark is the user's input: it is only ever a digest, looked
// up in the store exactly as `--container-image=sha256:…` would be (every stored image is
// readable by every user), so it reaches nothing its user could not already run.

import { isStrataError, userError } from '../../errors.js';
import type { SavedMarker } from '../import/saved-marker.js';
import type { Store } from '../store.js';

/** The digest to import the file on, or undefined for a plain squashfs file (a whole tree). */
export async function savedLayerBase(store: Store, path: string, marker: SavedMarker): Promise<string | undefined> {
  if (marker.kind === 'none') return undefined;
  if (marker.kind === 'invalid') {
    throw userError('E_BAD_REF', `squashfs file ${path} carries a strata save mark that is not valid: ${marker.why}`, {
      hint: 'give the file as --container-save wrote it (or save the job again)',
    });
  }
  try {
    await store.open(marker.base);
  } catch (error) {
    if (!isStrataError(error)) throw error;
    if (error.code === 'E_UNKNOWN_IMAGE') {
      throw userError('E_SAVED_BASE_MISSING', `squashfs file ${path} holds only the changes a job made to image ${marker.base}, which is no longer in the store`, {
        hint: `put them on an image that is: sqfs2tar ${path} > changes.tar && strata import tar:changes.tar --base NAME:TAG --tag ~/NAME:TAG (--container-save=~/NAME:TAG keeps the base with the changes)`,
      });
    }
    if (error.code === 'E_IMAGE_BROKEN') {
      throw userError('E_BAD_REF', `squashfs file ${path} carries a strata save mark naming ${marker.base}, which is not an image`, {
        hint: 'give the file as --container-save wrote it (or save the job again)',
      });
    }
    throw error;
  }
  return marker.base;
}
