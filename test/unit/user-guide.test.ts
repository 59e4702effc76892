// docs/user-guide.md lists every message of a user error (userError(...) in src/): a new or
// reworded message that is not in the guide fails here. A message template's literal parts (the
// text between ${...}) must each appear in the guide, next to its code.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('../..', import.meta.url).pathname;
const guide = readFileSync(join(root, 'docs/user-guide.md'), 'utf8').replace(/\\\|/g, '|');

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? sources(path) : path.endsWith('.ts') ? [path] : [];
  });
}

/** The string literal or template starting at `text[at]`, as its literal parts (placeholders cut out). */
function literalParts(text: string, at: number): string[] {
  const quote = text[at];
  const parts: string[] = [];
  let current = '';
  for (let i = at + 1; i < text.length; i++) {
    const c = text[i];
    if (c === '\\') {
      current += text[++i];
    } else if (c === quote) {
      parts.push(current);
      return parts;
    } else if (quote === '`' && c === '$' && text[i + 1] === '{') {
      // Skip the placeholder, nested templates and braces included.
      parts.push(current);
      current = '';
      let depth = 0;
      for (i++; i < text.length; i++) {
        if (text[i] === '{') depth++;
        else if (text[i] === '}' && --depth === 0) break;
        else if (text[i] === '`') i = text.indexOf('`', i + 1);
      }
    } else current += c;
  }
  throw new Error(`unterminated string at ${at}`);
}

const messages = sources(join(root, 'src')).flatMap((file) => {
  const text = readFileSync(file, 'utf8');
  const found: { file: string; code: string; parts: string[] }[] = [];
  for (const match of text.matchAll(/\b(?:userError\(\s*'(E_[A-Z_]+)',|badEntry\()\s*/g)) {
    const at = match.index! + match[0].length;
    if (!'`\''.includes(text[at])) continue;
    found.push({ file: file.slice(root.length), code: match[1] ?? 'E_TAR', parts: literalParts(text, at).map((p) => p.trim()).filter((p) => p.length >= 4) });
  }
  return found;
});

test('the sources have user errors to check', () => {
  expect(messages.length).toBeGreaterThan(30);
});

test.each(messages.map((m) => [`${m.code} ${m.parts.join(' … ')} (${m.file})`, m] as const))('%s is in docs/user-guide.md', (_, message) => {
  const rows = guide.split('\n').filter((line) => line.startsWith(`| \`${message.code}\` |`));
  expect(rows.length).toBeGreaterThan(0);
  expect(rows.some((row) => message.parts.every((part) => row.includes(part)))).toBe(true);
});

test('every code the guide names is one strata reports (src/error-codes.ts), and the list has no duplicates', async () => {
  const { ERROR_CODES } = await import('../../src/error-codes.js');
  expect(new Set(ERROR_CODES).size).toBe(ERROR_CODES.length);
  const named = [...guide.matchAll(/^\| `(E_[A-Z0-9_]+)` \|/gm)].map((match) => match[1]);
  expect(named.length).toBeGreaterThan(30);
  for (const code of named) expect({ code, known: (ERROR_CODES as readonly string[]).includes(code) }).toEqual({ code, known: true });
});
