import { afterEach, describe, expect, it, vi } from 'vitest';

import { createNotifier, watchdogIntervalMs } from '../src/sd-notify';

// A sender that records what would have gone to the socket.
function recorder() {
  const sent: Array<{ socketPath: string; message: string }> = [];
  const send = (socketPath: string, message: string): void => {
    sent.push({ socketPath, message });
  };
  return { sent, send, messages: () => sent.map((s) => s.message) };
}

const SOCKET = '/run/systemd/notify';

describe('sd-notify', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('sends nothing when NOTIFY_SOCKET is unset, watchdog included', () => {
    vi.useFakeTimers();
    const { sent, send } = recorder();
    const notifier = createNotifier({ env: { WATCHDOG_USEC: '2000000' }, send });
    notifier.ready();
    notifier.status('serving');
    notifier.startWatchdog();
    vi.advanceTimersByTime(10_000);
    notifier.stopping();
    notifier.stop();
    expect(sent).toEqual([]);
  });

  it('sends READY=1, STATUS= and STOPPING=1 to the socket it was given', () => {
    const { sent, send } = recorder();
    const notifier = createNotifier({ env: { NOTIFY_SOCKET: SOCKET }, send });
    notifier.ready();
    notifier.status('2 jobs running');
    notifier.stopping();
    expect(sent).toEqual([
      { socketPath: SOCKET, message: 'READY=1' },
      { socketPath: SOCKET, message: 'STATUS=2 jobs running' },
      { socketPath: SOCKET, message: 'STOPPING=1' },
    ]);
  });

  it('passes an abstract socket name (@…) through unchanged', () => {
    const { sent, send } = recorder();
    createNotifier({ env: { NOTIFY_SOCKET: '@/org/freedesktop/systemd1/notify/1' }, send }).ready();
    expect(sent).toEqual([{ socketPath: '@/org/freedesktop/systemd1/notify/1', message: 'READY=1' }]);
  });

  it('keeps STATUS to one line, so its text cannot smuggle in another assignment', () => {
    const { send, messages } = recorder();
    createNotifier({ env: { NOTIFY_SOCKET: SOCKET }, send }).status('catalog ok\nREADY=1\r\n');
    expect(messages()).toEqual(['STATUS=catalog ok READY=1 ']);
  });

  it('sends WATCHDOG=1 every WATCHDOG_USEC/2 and stops when told', () => {
    vi.useFakeTimers();
    const { send, messages } = recorder();
    // WatchdogSec=30 → WATCHDOG_USEC=30000000 µs → a ping every 15 000 ms.
    const notifier = createNotifier({
      env: { NOTIFY_SOCKET: SOCKET, WATCHDOG_USEC: '30000000', WATCHDOG_PID: String(process.pid) },
      send,
    });
    notifier.startWatchdog();
    vi.advanceTimersByTime(14_999);
    expect(messages()).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(messages()).toEqual(['WATCHDOG=1']);
    vi.advanceTimersByTime(15_000 * 3);
    expect(messages()).toEqual(Array(4).fill('WATCHDOG=1'));

    notifier.stop();
    vi.advanceTimersByTime(60_000);
    expect(messages()).toHaveLength(4);
  });

  it('starts one watchdog timer however often startWatchdog is called', () => {
    vi.useFakeTimers();
    const { send, messages } = recorder();
    const notifier = createNotifier({ env: { NOTIFY_SOCKET: SOCKET, WATCHDOG_USEC: '1000000' }, send });
    notifier.startWatchdog();
    notifier.startWatchdog();
    vi.advanceTimersByTime(500);
    expect(messages()).toEqual(['WATCHDOG=1']);
    notifier.stop();
  });

  it('does not keep the process alive for the watchdog', () => {
    const setIntervalSpy = vi.spyOn(globalThis, 'setInterval');
    const { send } = recorder();
    const notifier = createNotifier({ env: { NOTIFY_SOCKET: SOCKET, WATCHDOG_USEC: '1000000' }, send });
    notifier.startWatchdog();
    const timer = setIntervalSpy.mock.results[0]?.value as NodeJS.Timeout;
    expect(timer.hasRef()).toBe(false);
    notifier.stop();
    setIntervalSpy.mockRestore();
  });

  it('runs no watchdog when WATCHDOG_PID names another process', () => {
    vi.useFakeTimers();
    const { sent, send } = recorder();
    const notifier = createNotifier({
      env: { NOTIFY_SOCKET: SOCKET, WATCHDOG_USEC: '2000000', WATCHDOG_PID: String(process.pid + 1) },
      send,
    });
    notifier.startWatchdog();
    vi.advanceTimersByTime(60_000);
    expect(sent).toEqual([]);
  });

  it('runs no watchdog without a usable WATCHDOG_USEC', () => {
    expect(watchdogIntervalMs({})).toBeUndefined();
    expect(watchdogIntervalMs({ WATCHDOG_USEC: '' })).toBeUndefined();
    expect(watchdogIntervalMs({ WATCHDOG_USEC: '0' })).toBeUndefined();
    expect(watchdogIntervalMs({ WATCHDOG_USEC: 'abc' })).toBeUndefined();
    expect(watchdogIntervalMs({ WATCHDOG_USEC: '-5' })).toBeUndefined();
    expect(watchdogIntervalMs({ WATCHDOG_USEC: '30000000' })).toBe(15_000);
    // A period under 2 ms still pings rather than spinning on a 0 ms interval.
    expect(watchdogIntervalMs({ WATCHDOG_USEC: '1000' })).toBe(1);
    expect(watchdogIntervalMs({ WATCHDOG_USEC: '30000000', WATCHDOG_PID: '42' }, 42)).toBe(15_000);
    expect(watchdogIntervalMs({ WATCHDOG_USEC: '30000000', WATCHDOG_PID: '43' }, 42)).toBeUndefined();
  });

  it('swallows a failing sender and reports it to onError, from calls and from the watchdog', () => {
    vi.useFakeTimers();
    const failure = Object.assign(new Error('sendto ECONNREFUSED'), { code: 'ECONNREFUSED' });
    const errors: Array<{ error: unknown; message: string }> = [];
    const notifier = createNotifier({
      env: { NOTIFY_SOCKET: SOCKET, WATCHDOG_USEC: '2000000' },
      send: () => {
        throw failure;
      },
      onError: (error, message) => errors.push({ error, message }),
    });
    expect(() => notifier.ready()).not.toThrow();
    notifier.startWatchdog();
    expect(() => vi.advanceTimersByTime(1000)).not.toThrow();
    notifier.stop();
    expect(errors).toEqual([
      { error: failure, message: 'READY=1' },
      { error: failure, message: 'WATCHDOG=1' },
    ]);
  });

  it('survives a failing sender without onError, and an onError that throws', () => {
    const send = () => {
      throw new Error('no socket');
    };
    expect(() => createNotifier({ env: { NOTIFY_SOCKET: SOCKET }, send }).ready()).not.toThrow();
    const onError = () => {
      throw new Error('logger down');
    };
    expect(() => createNotifier({ env: { NOTIFY_SOCKET: SOCKET }, send, onError }).stopping()).not.toThrow();
  });

  // The real thing (the daemon, the addon's sendNotify, a real AF_UNIX datagram socket, path and
  // abstract) is in lifecycle.test.ts.
});
