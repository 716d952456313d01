// Human output: aligned tables, byte sizes, and the progress bar of `create --wait`.

export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n') + '\n';
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

export function bytes(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return '-';
  let v = n;
  let u = 0;
  while (v >= 1024 && u < UNITS.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${v} B` : `${v < 10 ? v.toFixed(1) : Math.round(v)} ${UNITS[u]}`;
}

/** "2024-05-01 12:00:00" (UTC) from an ISO time; the input when it does not parse. */
export function shortTime(iso: string | null | undefined): string {
  if (!iso) return '-';
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return iso;
  return new Date(t).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

/** `[##########..........]  50%` */
export function progressBar(percent: number, width = 30): string {
  const p = Math.max(0, Math.min(100, Math.round(percent)));
  const full = Math.round((p / 100) * width);
  return `[${'#'.repeat(full)}${'.'.repeat(width - full)}] ${String(p).padStart(3)}%`;
}

/** Draws progress on a terminal (one line, redrawn) or as plain lines when it changes (logs, pipes). */
export class ProgressReporter {
  private last = '';
  private drawn = false;

  constructor(
    private readonly out: NodeJS.WriteStream,
    private readonly tty = Boolean(out.isTTY),
  ) {}

  update(id: string, state: string, percent: number): void {
    if (this.tty) {
      const cols = this.out.columns || 80;
      const text = `${id} ${progressBar(percent)} ${state}`.slice(0, cols - 1);
      this.out.write(`\r${text}\x1b[K`);
      this.drawn = true;
      return;
    }
    const text = `${id} ${state} ${Math.round(percent)}%`;
    if (text !== this.last) this.out.write(text + '\n');
    this.last = text;
  }

  done(): void {
    if (this.tty && this.drawn) this.out.write('\n');
    this.drawn = false;
  }
}

/** Text from a node (a display_name, an error message) made safe for a terminal: control
 *  characters other than newline and tab become \xNN, so no escape sequence reaches it. */
export function printable(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\x00-\x08\x0b-\x1f\x7f-\x9f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}
