// The CLI's human output: tables, sizes, and the progress of create --wait on a terminal and off.
import { describe, expect, it } from 'vitest';

import { ProgressReporter, bytes, printable, progressBar, table } from '../src/cli/output';

function fakeStream(isTTY: boolean): NodeJS.WriteStream & { text: string } {
  const s = { text: '', isTTY, columns: 80, write(chunk: string) { s.text += chunk; return true; } };
  return s as unknown as NodeJS.WriteStream & { text: string };
}

describe('cli output', () => {
  it('draws one redrawn bar on a terminal, plain lines on a pipe', () => {
    const tty = fakeStream(true);
    const p = new ProgressReporter(tty);
    p.update('snap-aaaa0001', 'creating', 0);
    p.update('snap-aaaa0001', 'registering', 50);
    p.update('snap-aaaa0001', 'available', 100);
    p.done();
    expect(tty.text.split('\r').filter(Boolean)).toHaveLength(3);
    expect(tty.text).toContain(`snap-aaaa0001 [${'#'.repeat(15)}${'.'.repeat(15)}]  50% registering`);
    expect(tty.text.endsWith('100% available\x1b[K\n')).toBe(true);

    const pipe = fakeStream(false);
    const q = new ProgressReporter(pipe);
    q.update('snap-aaaa0001', 'creating', 0);
    q.update('snap-aaaa0001', 'creating', 0);
    q.update('snap-aaaa0001', 'available', 100);
    q.done();
    expect(pipe.text).toBe('snap-aaaa0001 creating 0%\nsnap-aaaa0001 available 100%\n');
  });

  it('formats sizes and aligns tables', () => {
    expect(bytes(0)).toBe('0 B');
    expect(bytes(1536)).toBe('1.5 KiB');
    expect(bytes(64 * 1024 * 1024)).toBe('64 MiB');
    expect(bytes(null)).toBe('-');
    expect(progressBar(150, 4)).toBe('[####] 100%');
    expect(table(['A', 'BB'], [['xxx', 'y'], ['z', '']])).toBe('A    BB\nxxx  y\nz\n');
  });
});

describe('printable', () => {
  it('keeps text, newlines and tabs, and turns every other control character into \\xNN', () => {
    expect(printable('snap-a1\tok\n')).toBe('snap-a1\tok\n');
    expect(printable('evil\x1b]2;owned\x07name\r\x9b31m')).toBe('evil\\x1b]2;owned\\x07name\\x0d\\x9b31m');
  });
});
