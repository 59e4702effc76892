// What an OpenPBS / PBS Pro MoM on this host keeps on disk, read the way PBS itself lays it out
// (openpbs src/lib/Libutil/hook.c hook_save, src/server/setup_resc.c, src/resmom/job_recov_fs.c):
//
//   /etc/pbs.conf (PBS_CONF_FILE)           KEY=VALUE; PBS_HOME, PBS_MOM_HOME, PBS_START_MOM
//   PBS_HOME/mom_priv/jobs/<jobid>.JB       one per job the MoM has (the name is the full job id)
//   PBS_HOME/mom_priv/hooks/<name>.HK       a MoM hook's attributes, key=value, defaults left out
//                                           (enabled=true, fail_action=none)
//   PBS_HOME/mom_priv/hooks/<name>.PY       its script; <name>.CF its configuration
//   PBS_HOME/mom_priv/hooks/resourcedef     the server's resource definitions ("NAME type=T flag=F")
//
// Used by `strata node gc` (which jobs the MoM still has) and `strata doctor` (is the hook there).

import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

export interface PbsMom {
  /** The pbs.conf read. */
  conf: string;
  home: string;
}

/** This host's MoM, or undefined when there is no pbs.conf or it says this host runs no MoM. */
export function findPbsMom(env: NodeJS.ProcessEnv = process.env): PbsMom | undefined {
  const conf = env.PBS_CONF_FILE || '/etc/pbs.conf';
  let text: string;
  try {
    text = readFileSync(conf, 'utf8');
  } catch {
    return undefined;
  }
  const values = parseKeyValues(text);
  if (values.get('PBS_START_MOM') === '0') return undefined;
  // As pbs_loadconf: the environment overrides pbs.conf; PBS_MOM_HOME, if set, is the MoM's home.
  const home = env.PBS_MOM_HOME || values.get('PBS_MOM_HOME') || env.PBS_HOME || values.get('PBS_HOME') || '/var/spool/pbs';
  return { conf, home };
}

/** The ids of the jobs the MoM has: its job files. Throws when the directory cannot be read. */
export function pbsMomJobIds(mom: PbsMom): string[] {
  return readdirSync(join(mom.home, 'mom_priv', 'jobs'))
    .filter((name) => name.endsWith('.JB'))
    .map((name) => name.slice(0, -'.JB'.length));
}

export interface PbsHook {
  name: string;
  enabled: boolean;
  events: string[];
  failAction: string;
  hasScript: boolean;
}

/** The MoM hooks PBS installed on this host whose name contains "strata". */
export function strataMomHooks(mom: PbsMom): PbsHook[] {
  const dir = join(mom.home, 'mom_priv', 'hooks');
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names
    .filter((name) => name.endsWith('.HK') && name.toLowerCase().includes('strata'))
    .sort()
    .map((file) => {
      const name = file.slice(0, -'.HK'.length);
      const values = parseKeyValues(readFileSync(join(dir, file), 'utf8'));
      return {
        name,
        enabled: values.get('enabled') !== 'false',
        events: (values.get('event') ?? '').split(',').map((event) => event.trim()).filter(Boolean),
        failAction: values.get('fail_action') ?? 'none',
        hasScript: names.includes(`${name}.PY`),
      };
    });
}

/** A custom resource's flags from the MoM's copy of resourcedef; undefined when not defined. */
export function resourceFlags(mom: PbsMom, resource: string): string | undefined {
  let text: string;
  try {
    text = readFileSync(join(mom.home, 'mom_priv', 'hooks', 'resourcedef'), 'utf8');
  } catch {
    return undefined;
  }
  for (const line of text.split('\n')) {
    const [name, ...attributes] = line.trim().split(/\s+/);
    if (name !== resource || line.trim().startsWith('#')) continue;
    return attributes.find((attribute) => attribute.startsWith('flag='))?.slice('flag='.length) ?? '';
  }
  return undefined;
}

/** `KEY=VALUE` lines (pbs.conf, .HK files); comments and other lines are skipped. Pure. */
export function parseKeyValues(text: string): Map<string, string> {
  const values = new Map<string, string>();
  for (const line of text.split('\n')) {
    const match = /^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=(.*)$/.exec(line);
    if (match) values.set(match[1], match[2].trim());
  }
  return values;
}
