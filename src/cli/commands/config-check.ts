// `strata config check`: load the configuration exactly as the prolog does and show the result.
// On success the effective configuration goes to stdout (exit 0): as YAML in the on-disk form, which
// can be used as a configuration file as is, or with --json as the Config object strata uses
// (camelCase, sizes in bytes). On failure every problem goes to stderr (exit 1).

import { dump } from 'js-yaml';
import { asStrataError } from '../../errors.js';
import { BUILTIN_ORIGIN } from '../../config/schema.js';
import { configSource, formatProblems, readConfig, type LoadOptions } from '../../config/load.js';
import { toOnDisk } from '../../config/validate.js';

export interface ConfigCheckIo {
  env?: NodeJS.ProcessEnv;
  stdout?: (text: string) => void;
  stderr?: (text: string) => void;
  loadOptions?: LoadOptions;
}

export async function configCheck(args: { json?: boolean }, io: ConfigCheckIo = {}): Promise<number> {
  const env = io.env ?? process.env;
  const out = io.stdout ?? ((text: string) => void process.stdout.write(text));
  const err = io.stderr ?? ((text: string) => void process.stderr.write(text));
  const { path } = configSource(env, io.loadOptions);

  let origin = path;
  let errors: string[];
  try {
    const result = await readConfig(env, io.loadOptions);
    origin = result.origin;
    if (result.config) {
      const { config } = result;
      if (args.json) {
        out(`${JSON.stringify(config, null, 2)}\n`);
      } else {
        const from = origin === BUILTIN_ORIGIN ? `${BUILTIN_ORIGIN} (${path} does not exist)` : origin;
        out(`# effective configuration, from ${from}\n${dump(toOnDisk(config), { lineWidth: -1, noRefs: true })}`);
      }
      return 0;
    }
    errors = result.errors;
  } catch (error) {
    errors = [asStrataError(error).summary];
    if (!args.json) {
      err(`strata: ${errors[0]}\n`);
      return 1;
    }
  }
  err(args.json ? `${JSON.stringify({ origin, errors }, null, 2)}\n` : `${formatProblems(origin, errors)}\n`);
  return 1;
}
