// `npm run bench`: the performance figures of design.md, each measured side by side with the
// alternative in the same run, as medians (the machines are shared and noisy).
// Needs root and xfsprogs (loop-mounted filesystems), like the real-filesystem tests.
import { apiBench } from './api-bench';
import { copyVsCp, reflinkVsCp, type Row } from './files-bench';
import { canMake } from '../helpers/loopfs';

async function main(): Promise<void> {
  const runs = Number(process.env.BENCH_RUNS ?? 5);
  if (!canMake('xfs') || !canMake('ext4')) {
    console.error('volsnapd bench: needs root, xfsprogs and e2fsprogs (it measures real filesystems)');
    process.exit(2);
  }
  const rows: Row[] = [];
  const sections: Array<[string, () => Promise<Row[]>]> = [
    ['reflink vs cp', () => reflinkVsCp(runs)],
    ['copy vs cp', () => copyVsCp(runs)],
    ['api', () => apiBench(runs)],
  ];
  const only = process.argv[2];
  for (const [name, run] of sections) {
    if (only && !name.includes(only)) continue;
    console.error(`… ${name} (${runs} interleaved runs)`);
    rows.push(...(await run()));
  }
  const header: Row = { what: 'measure', ours: 'volsnapd', theirs: 'alternative', ratio: 'ratio', target: 'target' };
  const all = [header, ...rows];
  const width = (k: keyof Row): number => Math.max(...all.map((r) => r[k].length));
  const line = (r: Row): string => (Object.keys(header) as (keyof Row)[]).map((k) => r[k].padEnd(width(k))).join(' | ');
  console.log(`| ${line(header)} |`);
  console.log(`| ${(Object.keys(header) as (keyof Row)[]).map((k) => '-'.repeat(width(k))).join(' | ')} |`);
  for (const r of rows) console.log(`| ${line(r)} |`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
