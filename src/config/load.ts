// Reading the configuration file. Runs in every prolog, so it is one read and one YAML parse:
// no search path, no includes, no environment overrides beyond the file's own path. A node-local
// file of a few hundred bytes: read synchronously (one system call each, where the asynchronous
// read hops through libuv's thread pool four times). The node agent reads it for every request
// and parses it again only when its text changed.

import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { CORE_SCHEMA, load } from 'js-yaml';
import { errnoCode, nodeError } from '../errors.js';
import { BUILTIN_ORIGIN, CONFIG_ENV, DEFAULT_CONFIG_PATH } from './schema.js';
import type { Config } from './types.js';
import { defaultConfig, validateConfig, type ValidationResult } from './validate.js';

export interface LoadOptions {
  /** The file read when STRATA_CONFIG is unset (tests point this elsewhere). */
  defaultPath?: string;
}

export interface ConfigSource {
  /** Absolute path of the file to read. */
  path: string;
  /** Named by STRATA_CONFIG: then a missing file is an error, not "use the defaults". */
  explicit: boolean;
}

/** Which file the configuration comes from. */
export function configSource(env: NodeJS.ProcessEnv = process.env, options: LoadOptions = {}): ConfigSource {
  const named = env[CONFIG_ENV];
  if (named) return { path: resolve(named), explicit: true };
  return { path: options.defaultPath ?? DEFAULT_CONFIG_PATH, explicit: false };
}

export interface ReadResult extends ValidationResult {
  /** The file read, or "built-in defaults". */
  origin: string;
  /** The file that was looked for (also when it did not exist). */
  path: string;
}

/**
 * Read, parse and validate the configuration, returning all validation problems rather than
 * throwing them (for `strata config check`). Throws a StrataError (node, E_CONFIG) when the file
 * cannot be read, an explicitly named file does not exist, or the YAML is malformed.
 */
export async function readConfig(env: NodeJS.ProcessEnv = process.env, options: LoadOptions = {}): Promise<ReadResult> {
  const { path, explicit } = configSource(env, options);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const code = errnoCode(error);
    if (code === 'ENOENT' && !explicit) {
      return { origin: BUILTIN_ORIGIN, path, config: defaultConfig(BUILTIN_ORIGIN), errors: [] };
    }
    if (code === 'ENOENT') {
      throw nodeError('E_CONFIG', `configuration file ${path} (named by ${CONFIG_ENV}) does not exist`, {
        hint: `create it, or unset ${CONFIG_ENV} to use ${options.defaultPath ?? DEFAULT_CONFIG_PATH}`,
        cause: error,
      });
    }
    throw nodeError('E_CONFIG', `cannot read configuration file ${path}: ${code ?? String(error)}`, {
      hint: 'make it a readable file',
      cause: error,
    });
  }
  if (lastRead?.path !== path || lastRead.text !== text) {
    lastRead = { path, text, result: { origin: path, path, ...validateConfig(parseYaml(text, path), path) } };
  }
  // A copy: no caller's change to its configuration reaches the next request's.
  return structuredClone(lastRead.result);
}

/** The last file read, its text and what it gave: the same text gives the same result. */
let lastRead: { path: string; text: string; result: ReadResult } | undefined;

/** Parse YAML (core schema: no custom types), reporting a syntax error on one line with its position. */
export function parseYaml(text: string, path: string): unknown {
  try {
    return load(text, { schema: CORE_SCHEMA, filename: path });
  } catch (error) {
    const { reason, mark } = (error ?? {}) as { reason?: string; mark?: { line: number; column: number } };
    const where = mark ? `${path}:${mark.line + 1}:${mark.column + 1}` : path;
    const why = (reason ?? (error instanceof Error ? error.message : String(error))).split('\n', 1)[0];
    throw nodeError('E_CONFIG', `YAML syntax error in ${where}: ${why}`, {
      hint: 'fix the YAML at that position',
      cause: error,
    });
  }
}

/** The problems of an invalid configuration as one message: a heading, then one line per problem. */
export function formatProblems(origin: string, errors: readonly string[]): string {
  const count = `${errors.length} problem${errors.length === 1 ? '' : 's'}`;
  return [`invalid configuration in ${origin} (${count}):`, ...errors.map((e) => `  ${e}`)].join('\n');
}

/**
 * The effective configuration: from the file named by STRATA_CONFIG, else /etc/strata/strata.yaml,
 * else (when that does not exist) the built-in defaults. Throws one StrataError (node, E_CONFIG)
 * listing every problem.
 */
export async function loadConfig(env: NodeJS.ProcessEnv = process.env, options: LoadOptions = {}): Promise<Config> {
  const result = await readConfig(env, options);
  if (result.config) return result.config;
  // No hint: StrataError.summary would glue it onto the last problem line.
  throw nodeError('E_CONFIG', formatProblems(result.origin, result.errors));
}
