// etc/strata.yaml and docs/configuration.md are generated from src/config/schema.ts
// (node scripts/gen-config-doc.mjs); these tests fail when either drifts from the schema.
import { readFileSync } from 'node:fs';
import { load } from 'js-yaml';
import { renderConfigDoc, renderExampleConfig } from '../../src/config/doc.js';
import { SETTINGS, leafName } from '../../src/config/schema.js';
import { defaultConfig, validateConfig } from '../../src/config/validate.js';
import { parseYaml } from '../../src/config/load.js';

const read = (relative: string) => readFileSync(new URL(`../../${relative}`, import.meta.url), 'utf8');
const REGENERATE = 'out of date: run `node scripts/gen-config-doc.mjs`';

describe('etc/strata.yaml', () => {
  const text = read('etc/strata.yaml');

  test('validates, and as shipped equals the built-in defaults', () => {
    const { config, errors } = validateConfig(parseYaml(text, 'etc/strata.yaml'), 'example');
    expect(errors).toEqual([]);
    expect(config).toEqual(defaultConfig('example'));
  });

  test('documents every schema key', () => {
    const missing = SETTINGS.filter((s) => {
      const leaf = leafName(s.key);
      return !new RegExp(`^[ #]*(- )?${leaf}:`, 'm').test(text) || !text.includes(s.description.split(' ').slice(0, 4).join(' '));
    }).map((s) => s.key);
    expect(missing).toEqual([]);
  });

  test('the commented mounts example validates', () => {
    const lines = text.split('\n');
    const start = lines.indexOf('# For example:');
    expect(start).toBeGreaterThan(0);
    const block = [];
    for (const line of lines.slice(start + 1)) {
      if (!line.startsWith('#   ')) break;
      block.push(line.slice(4));
    }
    const { config, errors } = validateConfig(load(block.join('\n')), 'example');
    expect(errors).toEqual([]);
    expect(config!.mounts).toEqual([{ source: '/scratch', target: '/scratch', readonly: false, optional: true }]);
  });

  test('matches the schema', () => {
    if (text !== renderExampleConfig()) throw new Error(`etc/strata.yaml is ${REGENERATE}`);
  });
});

describe('docs/configuration.md', () => {
  const text = read('docs/configuration.md');

  test('has a row for every setting', () => {
    for (const s of SETTINGS) expect(text).toContain(`| \`${s.key}\` |`);
  });

  test('gives the reason for the non-obvious defaults', () => {
    for (const key of ['upper.backing', 'layers.cache', 'import.compression']) {
      expect(text).toMatch(new RegExp(`^\\| \`${key.replace('.', '\\.')}\` .*\\*Why:\\*`, 'm'));
    }
  });

  test('matches the schema', () => {
    if (text !== renderConfigDoc()) throw new Error(`docs/configuration.md is ${REGENERATE}`);
  });
});
