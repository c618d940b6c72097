/**
 * A small reader of the Prometheus text format (0.0.4), enough to check a
 * scrape in tests and to let scripts read a node's /metrics without a
 * Prometheus server. It keeps families with their TYPE and HELP and every
 * sample with its labels; timestamps and exemplars are not supported
 * (prom-client writes neither by default).
 */

export type MetricType = 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';

export interface ParsedSample {
  /** Sample name: the family name, or with `_bucket` / `_sum` / `_count` for histograms. */
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface MetricFamily {
  name: string;
  type: MetricType;
  help: string;
  samples: ParsedSample[];
}

const SUFFIXES = ['_bucket', '_sum', '_count'];

/** Parses an exposition; throws a TypeError naming the line when it is malformed. */
export function parsePrometheusText(text: string): Map<string, MetricFamily> {
  const families = new Map<string, MetricFamily>();
  const family = (name: string): MetricFamily => {
    let f = families.get(name);
    if (!f) families.set(name, (f = { name, type: 'untyped', help: '', samples: [] }));
    return f;
  };
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '') continue;
    if (line.startsWith('#')) {
      const m = /^#\s+(HELP|TYPE)\s+([a-zA-Z_:][a-zA-Z0-9_:]*)\s?(.*)$/.exec(line);
      if (!m) continue; // other comments carry no data
      const f = family(m[2]!);
      if (m[1] === 'HELP') f.help = unescapeHelp(m[3]!);
      else f.type = m[3]!.trim() as MetricType;
      continue;
    }
    const sample = parseSample(line, i + 1);
    family(familyOf(sample.name, families)).samples.push(sample);
  }
  return families;
}

/** The value of the one sample of `name` whose labels include `labels`, or undefined. */
export function sampleValue(families: Map<string, MetricFamily>, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const f of families.values()) {
    for (const s of f.samples) {
      if (s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)) return s.value;
    }
  }
  return undefined;
}

function familyOf(sampleName: string, families: Map<string, MetricFamily>): string {
  if (families.has(sampleName)) return sampleName;
  for (const suffix of SUFFIXES) {
    if (sampleName.endsWith(suffix)) {
      const base = sampleName.slice(0, -suffix.length);
      const t = families.get(base)?.type;
      if (t === 'histogram' || t === 'summary') return base;
    }
  }
  return sampleName;
}

function parseSample(line: string, lineNo: number): ParsedSample {
  const bad = (why: string) => new TypeError(`line ${lineNo} of the exposition: ${why}: ${line.slice(0, 120)}`);
  const nameMatch = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line);
  if (!nameMatch) throw bad('no metric name');
  const name = nameMatch[0];
  let pos = name.length;
  const labels: Record<string, string> = {};
  if (line[pos] === '{') {
    pos++;
    for (;;) {
      while (line[pos] === ' ' || line[pos] === ',') pos++;
      if (line[pos] === '}') {
        pos++;
        break;
      }
      const key = /^[a-zA-Z_][a-zA-Z0-9_]*/.exec(line.slice(pos));
      if (!key || line[pos + key[0].length] !== '=' || line[pos + key[0].length + 1] !== '"') throw bad('bad label');
      pos += key[0].length + 2;
      let value = '';
      for (;;) {
        const c = line[pos++];
        if (c === undefined) throw bad('unterminated label value');
        if (c === '"') break;
        if (c === '\\') {
          const e = line[pos++];
          value += e === 'n' ? '\n' : (e ?? '');
        } else {
          value += c;
        }
      }
      labels[key[0]] = value;
    }
  }
  const rest = line.slice(pos).trim().split(/\s+/);
  const value = parseValue(rest[0] ?? '');
  if (value === undefined) throw bad('bad value');
  return { name, labels, value };
}

function parseValue(text: string): number | undefined {
  // Prometheus reads these case-insensitively, and prom-client writes NaN as "Nan".
  const special = text.toLowerCase();
  if (special === '+inf' || special === 'inf') return Infinity;
  if (special === '-inf') return -Infinity;
  if (special === 'nan') return NaN;
  if (text === '' || !/^[-+0-9.eE]+$/.test(text)) return undefined;
  const v = Number(text);
  return Number.isNaN(v) ? undefined : v;
}

function unescapeHelp(s: string): string {
  return s.replace(/\\(n|\\)/g, (_, c: string) => (c === 'n' ? '\n' : '\\'));
}
