// Jest transformer: TypeScript to ESM with esbuild (type checking is `npm run typecheck`). It
// replaces ts-jest, whose start-up (loading the TypeScript compiler in every worker) cost more
// than many unit test files take to run. The code is what tsc would emit for isolatedModules.
const { transformSync } = require('esbuild');
const { createHash } = require('node:crypto');
const { version } = require('esbuild/package.json');

module.exports = {
  canInstrument: false,
  getCacheKey: (source, path) => createHash('sha256').update(`${version}\0${path}\0`).update(source).digest('hex'),
  process(source, path) {
    const { code, map } = transformSync(source, { loader: 'ts', format: 'esm', target: 'node22', sourcemap: 'external', sourcefile: path });
    return { code, map };
  },
};
