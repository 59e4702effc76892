// Per-node prolog/epilog metrics in the Prometheus text format, for node exporter's textfile
// collector (--collector.textfile.directory). Pure: the textfile is both the output and the only
// state, so each run parses the previous file, adds itself, and renders the whole file again.
//
//   strata_runs_total{phase,result}                counter    runs by outcome
//   strata_duration_seconds{phase} (histogram)     _bucket{le}, _sum, _count: wall time of each run
//   strata_layers_total                            counter    image layers of the jobs set up
//   strata_last_run_timestamp_seconds{phase}       gauge      when the last run ended (unix time)
//   strata_last_duration_seconds{phase}            gauge      how long it took
//   strata_last_layers                             gauge      layers of the last job set up

export type Phase = 'prolog' | 'epilog';

export interface RunSample {
  phase: Phase;
  /** ready, no-image, user-error, node-error (prolog); ok, lazy, node-error (epilog). */
  result: string;
  durationMs: number;
  /** Layers of the image set up (prolog `ready` only). */
  layers?: number;
  /** Unix time in seconds (tests pass their own). */
  now?: number;
}

/** Histogram bucket bounds (seconds): the targets are 0.12-0.25 s for a prolog, 0.1 s for an epilog. */
export const BUCKETS = [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

interface Family {
  name: string;
  type: 'counter' | 'gauge' | 'histogram';
  help: string;
}

const FAMILIES: Family[] = [
  { name: 'strata_runs_total', type: 'counter', help: 'Prolog and epilog runs on this node, by result.' },
  { name: 'strata_duration_seconds', type: 'histogram', help: 'Wall time of prolog and epilog runs.' },
  { name: 'strata_layers_total', type: 'counter', help: 'Image layers of the jobs set up on this node.' },
  { name: 'strata_last_run_timestamp_seconds', type: 'gauge', help: 'When the last prolog or epilog run ended.' },
  { name: 'strata_last_duration_seconds', type: 'gauge', help: 'Wall time of the last prolog or epilog run.' },
  { name: 'strata_last_layers', type: 'gauge', help: 'Layers of the last job set up on this node.' },
];

/** Samples by series (`name{labels}` exactly as written), in the order first seen. */
export type Samples = Map<string, number>;

const SAMPLE_RE = /^(strata_[a-z_]+(?:\{[^}]*\})?) (\S+)$/;

/** The samples of a textfile written by render(); other lines (comments, foreign metrics) are dropped. */
export function parseSamples(text: string): Samples {
  const samples: Samples = new Map();
  for (const line of text.split('\n')) {
    const match = SAMPLE_RE.exec(line);
    if (!match) continue;
    const value = Number(match[2]);
    if (Number.isFinite(value)) samples.set(match[1], value);
  }
  return samples;
}

const series = (name: string, labels: Record<string, string> = {}) => {
  const pairs = Object.entries(labels).map(([key, value]) => `${key}="${value.replace(/["\\\n]/g, '_')}"`);
  return pairs.length ? `${name}{${pairs.join(',')}}` : name;
};

/** The samples after one more run. */
export function addRun(previous: Samples, run: RunSample): Samples {
  const samples: Samples = new Map(previous);
  const add = (key: string, by: number) => samples.set(key, (samples.get(key) ?? 0) + by);
  const seconds = run.durationMs / 1000;
  const phase = { phase: run.phase };
  add(series('strata_runs_total', { ...phase, result: run.result }), 1);
  for (const bound of BUCKETS) {
    // Every bucket exists from the first run on, so rate() over any bucket works.
    add(series('strata_duration_seconds_bucket', { ...phase, le: String(bound) }), seconds <= bound ? 1 : 0);
  }
  add(series('strata_duration_seconds_bucket', { ...phase, le: '+Inf' }), 1);
  add(series('strata_duration_seconds_sum', phase), seconds);
  add(series('strata_duration_seconds_count', phase), 1);
  samples.set(series('strata_last_run_timestamp_seconds', phase), Math.round(run.now ?? Date.now() / 1000));
  samples.set(series('strata_last_duration_seconds', phase), seconds);
  if (run.layers !== undefined) {
    add('strata_layers_total', run.layers);
    samples.set('strata_last_layers', run.layers);
  }
  return samples;
}

/** The textfile: each family's HELP and TYPE, then its samples (sorted, so the file is stable). */
export function render(samples: Samples): string {
  const byFamily = new Map<string, { key: string; order: SortKey; value: number }[]>();
  for (const [key, value] of samples) {
    const order = sortKey(key);
    const list = byFamily.get(order.family) ?? [];
    list.push({ key, order, value });
    byFamily.set(order.family, list);
  }
  const lines: string[] = [];
  for (const family of FAMILIES) {
    const mine = byFamily.get(family.name);
    if (!mine) continue;
    mine.sort((a, b) => compareKeys(a.order, b.order));
    lines.push(`# HELP ${family.name} ${family.help}`, `# TYPE ${family.name} ${family.type}`);
    for (const { key, value } of mine) lines.push(`${key} ${formatValue(value)}`);
  }
  return lines.length ? `${lines.join('\n')}\n` : '';
}

interface SortKey {
  family: string;
  /** The series without the histogram suffix and `le`: a histogram's lines stay together. */
  group: string;
  /** -1 for plain series; 0, 1, 2 for _bucket, _sum, _count. */
  suffix: number;
  le: number;
}

const HISTOGRAM_SUFFIX = /^(strata_duration_seconds)_(bucket|sum|count)$/;

function sortKey(key: string): SortKey {
  const brace = key.indexOf('{');
  const name = brace < 0 ? key : key.slice(0, brace);
  const labels = brace < 0 ? '' : key.slice(brace);
  const histogram = HISTOGRAM_SUFFIX.exec(name);
  const le = /le="([^"]+)"/.exec(labels)?.[1];
  return {
    family: histogram ? histogram[1] : name,
    group: `${histogram ? histogram[1] : name}${labels.replace(/,?le="[^"]+"/, '')}`,
    suffix: histogram ? ['bucket', 'sum', 'count'].indexOf(histogram[2]) : -1,
    le: le === undefined ? -1 : le === '+Inf' ? Infinity : Number(le),
  };
}

const compareKeys = (x: SortKey, y: SortKey) => (x.group < y.group ? -1 : x.group > y.group ? 1 : x.suffix - y.suffix || x.le - y.le);

const formatValue = (value: number) => (Number.isInteger(value) ? String(value) : String(Number(value.toFixed(6))));
