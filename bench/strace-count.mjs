// Count the metadata operations (path-based system calls, `strace -e trace=%file`) a traced
// command made on one directory tree, such as the image store on the shared filesystem.

/** The traced calls whose path argument lies in `dir`, as `syscall path` strings. */
export function storeOperations(traceText, dir) {
  const prefix = dir.endsWith('/') ? dir : `${dir}/`;
  const operations = [];
  for (const line of traceText.split('\n')) {
    // "1234 openat(AT_FDCWD, "/path", ...) = 3": the first string argument is the path.
    const match = /^(?:\d+\s+)?(\w+)\((?:[A-Z_]+,\s*)?"((?:[^"\\]|\\.)*)"/.exec(line);
    if (match && (match[2] === dir || match[2].startsWith(prefix))) operations.push(`${match[1]} ${match[2]}`);
  }
  return operations;
}
