// How device environment entries join a container's environment. CDI says its entries are
// "appended to the container environment array", where a later entry wins; that would replace an
// image's own LD_LIBRARY_PATH or PATH with the driver's. So for search-path variables the device's
// directories are appended to what is already there (each once), and only other variables are
// replaced. Pure.

/** Colon-separated search paths: a device adds to them instead of replacing them. */
export const LIST_VARIABLES: ReadonlySet<string> = new Set([
  'PATH',
  'LD_LIBRARY_PATH',
  'LIBRARY_PATH',
  'CPATH',
  'C_INCLUDE_PATH',
  'CPLUS_INCLUDE_PATH',
  'MANPATH',
  'PKG_CONFIG_PATH',
  'PYTHONPATH',
  'XDG_DATA_DIRS',
  'VK_ICD_FILENAMES',
]);

const nameOf = (entry: string) => {
  const equals = entry.indexOf('=');
  return equals > 0 ? entry.slice(0, equals) : undefined;
};

/**
 * `base` with `additions` applied in order: a list variable (LIST_VARIABLES) gets the added
 * directories after its own, skipping ones it already has and empty ones; any other variable takes
 * the added value. Every name appears once, where it first appeared (new names at the end).
 * Entries without `NAME=` are dropped.
 */
export function mergeEnv(base: readonly string[], additions: readonly string[]): string[] {
  const values = new Map<string, string>();
  for (const entry of base) {
    const name = nameOf(entry);
    // A name repeated in the image's env: the last one is what a process would be given.
    if (name !== undefined) values.set(name, entry.slice(name.length + 1));
  }
  for (const entry of additions) {
    const name = nameOf(entry);
    if (name === undefined) continue;
    const added = entry.slice(name.length + 1);
    const current = values.get(name);
    values.set(name, LIST_VARIABLES.has(name) && current ? appendSearchPath(current, added) : added);
  }
  return [...values].map(([name, value]) => `${name}=${value}`);
}

/**
 * The directories `additions` put into search-path variables (LIST_VARIABLES), one `NAME=DIR:DIR`
 * entry per variable, each directory once, empty ones dropped. The entry environment already has
 * them after the image's value (mergeEnv); entry.json also carries them apart (`devicePaths`) so
 * that whoever enters the container adds them again after whatever value finally wins: a user's
 * `--container-env` value or an entrypoint's. strata makes no ld.so.cache (update-ldcache), so for
 * the driver libraries this search path is the only way in; the cache would rank after
 * LD_LIBRARY_PATH, hence after.
 */
export function searchPathAdditions(additions: readonly string[]): string[] {
  const dirs = new Map<string, string[]>();
  for (const entry of additions) {
    const name = nameOf(entry);
    if (name === undefined || !LIST_VARIABLES.has(name)) continue;
    const have = dirs.get(name) ?? [];
    for (const dir of entry.slice(name.length + 1).split(':')) if (dir && !have.includes(dir)) have.push(dir);
    if (have.length) dirs.set(name, have);
  }
  return [...dirs].map(([name, list]) => `${name}=${list.join(':')}`);
}

/**
 * `value` with the directories of `dirs` (colon-separated) it lacks appended; `dirs` alone when
 * `value` is unset or empty (an empty element would mean the working directory). The value's own
 * elements, empty ones included, stay as the user wrote them.
 */
export function appendSearchPath(value: string | undefined, dirs: string): string {
  const have = value ? value.split(':') : [];
  const extra = dirs.split(':').filter((dir, index, all) => dir && !have.includes(dir) && all.indexOf(dir) === index);
  if (!value) return extra.join(':');
  return extra.length ? `${value}:${extra.join(':')}` : value;
}
