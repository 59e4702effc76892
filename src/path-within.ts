// The one "is this path at or below that directory" test, on normalised absolute paths (pure).
// String prefixes alone would put /data2 inside /data.

export const isWithin = (path: string, dir: string): boolean => path === dir || path.startsWith(dir.endsWith('/') ? dir : `${dir}/`);
