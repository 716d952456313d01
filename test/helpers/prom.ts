// A small parser for the Prometheus text exposition format (0.0.4), strict enough to fail a test
// on malformed output: every sample line must be `name{labels} value`, every metric family must
// have HELP and TYPE before its samples, and label values must be properly escaped.

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Family {
  name: string;
  help: string;
  type: string;
  samples: Sample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

// As Prometheus reads them (Go's ParseFloat): special values in any case ("Nan" from prom-client).
function parseValue(s: string): number {
  if (/^\+?inf(inity)?$/i.test(s)) return Infinity;
  if (/^-inf(inity)?$/i.test(s)) return -Infinity;
  if (/^nan$/i.test(s)) return NaN;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(s)) throw new Error(`bad sample value '${s}'`);
  return Number(s);
}

function parseLabels(body: string, line: string): Record<string, string> {
  const labels: Record<string, string> = {};
  let i = 0;
  while (i < body.length) {
    const eq = body.indexOf('=', i);
    if (eq < 0) throw new Error(`bad labels in: ${line}`);
    const key = body.slice(i, eq).trim();
    if (!LABEL.test(key)) throw new Error(`bad label name '${key}' in: ${line}`);
    if (body[eq + 1] !== '"') throw new Error(`unquoted label value in: ${line}`);
    let j = eq + 2;
    let value = '';
    for (;;) {
      const c = body[j];
      if (c === undefined) throw new Error(`unterminated label value in: ${line}`);
      if (c === '"') break;
      if (c === '\\') {
        const n = body[j + 1];
        if (n === 'n') value += '\n';
        else if (n === '\\' || n === '"') value += n;
        else throw new Error(`bad escape in: ${line}`);
        j += 2;
        continue;
      }
      value += c;
      j++;
    }
    if (key in labels) throw new Error(`duplicate label '${key}' in: ${line}`);
    labels[key] = value;
    i = j + 1;
    if (body[i] === ',') i++;
    else if (i < body.length) throw new Error(`bad label separator in: ${line}`);
  }
  return labels;
}

/** Families by name; histogram/summary samples (_bucket, _sum, _count) sit under their family. */
export function parsePrometheus(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  const familyOf = (sample: string): Family | undefined => {
    const direct = families.get(sample);
    if (direct) return direct;
    const m = /^(.*)_(bucket|sum|count|total|created)$/.exec(sample);
    return m ? families.get(m[1]!) : undefined;
  };
  for (const raw of text.split('\n')) {
    const line = raw.trimEnd();
    if (line === '') continue;
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
      if (!m) continue; // a plain comment
      const [, kind, name, rest] = m as unknown as [string, string, string, string];
      if (!NAME.test(name)) throw new Error(`bad metric name '${name}'`);
      const fam = families.get(name) ?? { name, help: '', type: 'untyped', samples: [] };
      families.set(name, fam);
      if (kind === 'HELP') fam.help = rest;
      else {
        if (!['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(rest)) throw new Error(`bad type '${rest}' for ${name}`);
        if (fam.samples.length > 0) throw new Error(`TYPE after samples for ${name}`);
        fam.type = rest;
      }
      continue;
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+-?\d+)?$/.exec(line);
    if (!m) throw new Error(`bad sample line: ${line}`);
    const name = m[1]!;
    const fam = familyOf(name);
    if (!fam) throw new Error(`sample without HELP/TYPE: ${line}`);
    fam.samples.push({ name, labels: m[3] ? parseLabels(m[3], line) : {}, value: parseValue(m[4]!) });
  }
  return families;
}

/** The value of one sample (labels must match exactly those given, in any order); undefined when absent. */
export function sampleValue(families: Map<string, Family>, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const fam of families.values()) {
    for (const s of fam.samples) {
      if (s.name !== name) continue;
      const keys = Object.keys(s.labels);
      if (keys.length !== Object.keys(labels).length) continue;
      if (keys.every((k) => s.labels[k] === labels[k])) return s.value;
    }
  }
  return undefined;
}

/** Every sample of `name` whose labels include `labels`. */
export function samples(families: Map<string, Family>, name: string, labels: Record<string, string> = {}): Sample[] {
  const out: Sample[] = [];
  for (const fam of families.values()) {
    for (const s of fam.samples) {
      if (s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)) out.push(s);
    }
  }
  return out;
}
