// Values the SPANK plugin (C) and the TypeScript side must agree on, each defined once per
// language: this test is what keeps the two definitions equal.

import { readFileSync } from 'node:fs';
import { formatSize } from '../../src/config/validate.js';
import { ENTRY_VERSION } from '../../src/runtime/job/records.js';
import { MIN_UPPER_SIZE } from '../../src/runtime/job/plan.js';

const SPANK = new URL('../../spank/', import.meta.url).pathname;

/** The value of `#define NAME value` in a spank/ header. */
function define(header: string, name: string): string {
  const match = new RegExp(`^#define\\s+${name}\\s+(.+?)\\s*(?:/\\*.*)?$`, 'm').exec(readFileSync(SPANK + header, 'utf8'));
  if (!match) throw new Error(`spank/${header} has no #define ${name}`);
  return match[1];
}

test('the entry format the plugin reads is the one the prolog writes', () => {
  expect(Number(define('json.h', 'STRATA_ENTRY_VERSION'))).toBe(ENTRY_VERSION);
});

test('the plugin refuses at submit the upper sizes the prolog refuses: the same minimum', () => {
  expect(Number(define('strata.h', 'STRATA_MIN_UPPER_SIZE'))).toBe(MIN_UPPER_SIZE);
  expect(define('strata.h', 'STRATA_MIN_UPPER_SIZE_TEXT')).toBe(JSON.stringify(formatSize(MIN_UPPER_SIZE)));
});
