// The daemon's side of systemd's notify protocol (sd_notify(3)): READY=1 once it serves, STOPPING=1 when it
// begins to shut down, STATUS= for `systemctl status`, and WATCHDOG=1 at half of WatchdogSec=.
// Nothing is sent unless systemd started us with NOTIFY_SOCKET set, so running by hand costs nothing.
//
// The protocol is one AF_UNIX datagram per message, which Node cannot send (dgram is UDP only, net is
// SOCK_STREAM only): the sender is injected. The daemon passes the addon's sendNotify. The default spawns
// systemd-notify, which works only where systemd accepts messages from child processes
// (NotifyAccess=all): under the unit's NotifyAccess=main it is rejected, because the datagram comes from
// the child's PID, not ours.
import { execFileSync } from 'node:child_process';

/** Sends one notify datagram to the socket named by $NOTIFY_SOCKET (a path, or `@name` for abstract). */
export type NotifySender = (socketPath: string, message: string) => void;

export interface NotifierOptions {
  /** Where NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID are read from; process.env by default. */
  env?: NodeJS.ProcessEnv;
  /** Sends one datagram; the addon's sendNotify in the daemon, systemd-notify otherwise. */
  send?: NotifySender;
  /** Told about every failed send; a failed notification never stops the daemon. */
  onError?: (error: unknown, message: string) => void;
}

export interface Notifier {
  /** READY=1: start-up is complete and the API serves. */
  ready(): void;
  /** STOPPING=1: shutdown has begun. */
  stopping(): void;
  /** STATUS=text, one line (line breaks become spaces, so the text cannot add assignments). */
  status(text: string): void;
  /** WATCHDOG=1 every WATCHDOG_USEC/2, when systemd asked this process for it; the timer does not keep the process alive. */
  startWatchdog(): void;
  /** Stops the watchdog timer. */
  stop(): void;
}

/** The fallback sender: the systemd-notify tool, told our PID. Blocks for the few ms the tool runs. */
export const sendWithSystemdNotify: NotifySender = (socketPath, message) => {
  execFileSync('systemd-notify', [`--pid=${process.pid}`, message], {
    env: { ...process.env, NOTIFY_SOCKET: socketPath },
    stdio: 'ignore',
    // A stuck tool must not hold the event loop, or the watchdog it serves would fire.
    timeout: 2000,
  });
};

/** The watchdog period in ms, or undefined when systemd did not ask this process for WATCHDOG=1. */
export function watchdogIntervalMs(env: NodeJS.ProcessEnv, pid: number = process.pid): number | undefined {
  const usec = env.WATCHDOG_USEC;
  if (usec === undefined || !/^\d+$/.test(usec) || Number(usec) === 0) return undefined;
  // WATCHDOG_PID names the process the watchdog is for: a child that inherited the variables is not it.
  const watchdogPid = env.WATCHDOG_PID;
  if (watchdogPid !== undefined && watchdogPid !== '' && watchdogPid !== String(pid)) return undefined;
  // Half the period, as sd_watchdog_enabled(3) advises: one late ping must not be fatal.
  return Math.max(1, Math.floor(Number(usec) / 2000));
}

export function createNotifier(options: NotifierOptions = {}): Notifier {
  const env = options.env ?? process.env;
  const send = options.send ?? sendWithSystemdNotify;
  const socketPath = env.NOTIFY_SOCKET;
  let watchdog: NodeJS.Timeout | undefined;

  const notify = (message: string): void => {
    if (!socketPath) return;
    try {
      send(socketPath, message);
    } catch (error) {
      try {
        options.onError?.(error, message);
      } catch {
        // A failing error reporter must not turn a lost notification into a crash either.
      }
    }
  };

  return {
    ready: () => notify('READY=1'),
    stopping: () => notify('STOPPING=1'),
    status: (text) => notify(`STATUS=${text.replace(/[\r\n\0]+/g, ' ')}`),
    startWatchdog() {
      if (!socketPath || watchdog !== undefined) return;
      const intervalMs = watchdogIntervalMs(env);
      if (intervalMs === undefined) return;
      watchdog = setInterval(() => notify('WATCHDOG=1'), intervalMs);
      watchdog.unref();
    },
    stop() {
      if (watchdog !== undefined) clearInterval(watchdog);
      watchdog = undefined;
    },
  };
}
