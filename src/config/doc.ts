// The two human-facing renderings of schema.ts: the commented example etc/strata.yaml and the
// reference docs/configuration.md. Written by `node scripts/gen-config-doc.mjs`; unit tests fail
// when the committed files differ from what these functions produce.

import {
  CONFIG_ENV,
  DEFAULT_CONFIG_PATH,
  RESERVED_TARGETS,
  SETTINGS,
  defaultText,
  fieldsOf,
  leafName,
  type Setting,
} from './schema.js';

const WIDTH = 100;
const GENERATED = 'Generated from src/config/schema.ts by `node scripts/gen-config-doc.mjs`';

/** Word-wrap `text` into lines of at most WIDTH characters, each starting with `prefix`. */
function wrap(text: string, prefix: string, next: string = prefix): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    const lead = lines.length ? next : prefix;
    if (line && lead.length + line.length + 1 + word.length > WIDTH) {
      lines.push(lead + line);
      line = word;
    } else {
      line = line ? `${line} ${word}` : word;
    }
  }
  if (line) lines.push((lines.length ? next : prefix) + line);
  return lines;
}

/** A scalar as YAML: plain when that is unambiguous, else double-quoted. */
function yamlScalar(value: string | boolean): string {
  if (typeof value === 'boolean') return String(value);
  return /^[A-Za-z0-9/_.-]+$/.test(value) && !/^(true|false|yes|no|null|~|[0-9.]+)$/i.test(value) ? value : JSON.stringify(value);
}

function allowedNote(setting: Setting): string {
  if (setting.type === 'enum') return ` Allowed: ${setting.allowed!.join(', ')}.`;
  if (setting.min) return ` At least ${setting.min}.`;
  return '';
}

const section = (key: string) => (key.includes('.') && !key.includes('[]') ? key.slice(0, key.indexOf('.')) : undefined);

/** etc/strata.yaml: every setting with its default, commented from the schema. */
export function renderExampleConfig(): string {
  const out: string[] = [
    `# strata configuration: ${DEFAULT_CONFIG_PATH}, or the file named by ${CONFIG_ENV}.`,
    '#',
    ...wrap(`${GENERATED}; edit the schema, not this file.`, '# '),
    '# Every setting is shown with its default, so this file as it is behaves like no file at all.',
    '# Sizes are bytes or a number with K, M, G or T (binary: 4G = 4GiB = 4294967296 bytes); booleans',
    '# are true or false (yes/no, 1/0). `strata config check` shows the effective configuration or',
    '# every problem. Reference: docs/configuration.md',
  ];
  let current: string | undefined;
  for (const setting of SETTINGS) {
    if (setting.key.includes('[]')) continue; // list item fields: documented with their list
    const group = section(setting.key);
    const indent = group ? '  ' : '';
    out.push('');
    if (group && group !== current) out.push(`${group}:`);
    current = group;
    out.push(...wrap(setting.description + allowedNote(setting), `${indent}# `));
    if (setting.why) out.push(...wrap(`Why: ${setting.why}`, `${indent}# `));
    if (setting.type === 'list') {
      out.push(`# Each item has these keys:`);
      for (const field of fieldsOf(setting.key)) {
        const def = field.required ? 'Required.' : `Default: ${defaultText(field).replace(/`/g, '')}.`;
        out.push(...wrap(`${leafName(field.key)}: ${field.description} ${def}`, '#   ', '#     '));
      }
      out.push('# For example:', `#   ${setting.key}:`);
      fieldsOf(setting.key).forEach((field, index) => {
        const lead = index === 0 ? '  - ' : '    ';
        out.push(`#   ${lead}${leafName(field.key)}: ${yamlScalar(field.example ?? '')}`);
      });
      out.push(`${leafName(setting.key)}: []`);
    } else {
      const value = setting.default;
      const text = Array.isArray(value) ? `[${value.map(yamlScalar).join(', ')}]` : setting.type === 'integer' ? String(value) : yamlScalar(value as string | boolean);
      out.push(`${indent}${leafName(setting.key)}: ${text}`);
    }
  }
  return `${out.join('\n')}\n`;
}

const cell = (text: string) => text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
const code = (text: string) => `\`${text}\``;

/** docs/configuration.md: where the file is, a Setting / Default / Description table, and the rules. */
export function renderConfigDoc(): string {
  const rows = SETTINGS.map((setting) => {
    let description = setting.description;
    if (setting.type === 'enum') description += ` Allowed: ${setting.allowed!.map(code).join(', ')}.`;
    if (setting.min) description += ` At least ${code(setting.min)}.`;
    if (setting.why) description += ` *Why:* ${setting.why}`;
    const def = setting.required ? '(required)' : setting.defaultFrom ? defaultText(setting) : code(defaultText(setting));
    return `| ${code(setting.key)} | ${cell(def)} | ${cell(description)} |`;
  });
  return [
    '# Configuration',
    '',
    `<!-- ${GENERATED}; edit the schema, not this file. -->`,
    '',
    `strata reads one YAML file: the one named by \`${CONFIG_ENV}\`, else \`${DEFAULT_CONFIG_PATH}\`. When the`,
    'default file does not exist the built-in defaults below apply; a file named by',
    `\`${CONFIG_ENV}\` that does not exist is an error. Unknown keys and invalid values are errors, and`,
    'all of them are reported at once. `strata config check` prints the effective configuration (or',
    'every problem); `strata config check --json` prints it as JSON, sizes in bytes. A commented',
    'example with every setting and its default is [etc/strata.yaml](../etc/strata.yaml).',
    '',
    'Keys nest: `upper.max_size` is written',
    '',
    '```yaml',
    'upper:',
    '  max_size: 16G',
    '```',
    '',
    'and `mounts[].source` is the `source` key of each item of the `mounts` list.',
    '',
    '| Setting | Default | Description |',
    '|---|---|---|',
    ...rows,
    '',
    '## Values',
    '',
    '- Paths are absolute (`log.file` may also be `""`, meaning no log file); they are normalised',
    '  (`/scratch/` is `/scratch`).',
    '- Sizes are a number of bytes, or a number with `K`, `M`, `G` or `T`, optionally followed by `i`',
    '  and/or `B`; units are binary, so `4G`, `4GiB` and `4GB` all mean 4294967296 bytes.',
    '- Booleans are `true` or `false`; `yes`/`no` and `1`/`0` also work.',
    '- A section left empty (every key commented out) means its defaults; a key without a value is an',
    '  error.',
    '',
    '## Rules between settings',
    '',
    '- `upper.default_size` must not be larger than `upper.max_size`.',
    `- A mount target must not be ${RESERVED_TARGETS.map(code).join(', ')} or inside \`runtime_dir\`, and no two`,
    '  mounts may have the same target.',
    '- `runtime_dir` and `upper.disk_path` must not contain `,` or `:`: they end up in overlayfs mount',
    '  options.',
    '',
  ].join('\n');
}
