// A bounded job queue: at most `concurrency` jobs run at once, the rest wait in order. Each job
// gets an AbortSignal; shutdown lets running jobs finish up to a deadline, then aborts them.

export type Job = (signal: AbortSignal) => Promise<void>;

interface Entry {
  key: string;
  run: Job;
  controller: AbortController;
  resolve: () => void;
}

export class JobQueue {
  private readonly waiting: Entry[] = [];
  private readonly active = new Map<string, Entry>();
  private readonly settled = new Set<Promise<void>>();
  private closed = false;

  constructor(private readonly concurrency: number) {
    if (!Number.isInteger(concurrency) || concurrency < 1) throw new RangeError(`job concurrency must be an integer >= 1, got ${concurrency}`);
  }

  get running(): number {
    return this.active.size;
  }

  get queued(): number {
    return this.waiting.length;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Queues `run`; resolves when it has finished (jobs report their own failures). */
  push(key: string, run: Job): Promise<void> {
    if (this.closed) throw new Error('the job queue is closed');
    let resolve!: () => void;
    const done = new Promise<void>((r) => (resolve = r));
    this.waiting.push({ key, run, controller: new AbortController(), resolve });
    this.settled.add(done);
    void done.then(() => this.settled.delete(done));
    this.pump();
    return done;
  }

  private pump(): void {
    while (this.active.size < this.concurrency && this.waiting.length > 0) {
      const entry = this.waiting.shift()!;
      this.active.set(entry.key, entry);
      void entry
        .run(entry.controller.signal)
        .catch(() => undefined)
        .finally(() => {
          this.active.delete(entry.key);
          entry.resolve();
          this.pump();
        });
    }
  }

  /** Aborts every running and queued job now (a second shutdown signal); close() then returns as
   *  soon as they have cleaned up. */
  abortAll(reason: string): void {
    this.closed = true;
    for (const entry of [...this.active.values(), ...this.waiting]) entry.controller.abort(new Error(reason));
  }

  /** Stops taking jobs; waits up to `deadlineMs` for the rest, then aborts every one of them
   *  (queued ones start, see the abort, and end at once) and waits for them to end. */
  async close(deadlineMs: number, reason: string): Promise<void> {
    this.closed = true;
    const all = Promise.all([...this.settled]);
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<'expired'>((r) => (timer = setTimeout(() => r('expired'), deadlineMs)));
    const outcome = await Promise.race([all.then(() => 'done' as const), expired]);
    clearTimeout(timer);
    if (outcome === 'expired') {
      this.abortAll(reason);
      await Promise.all([...this.settled]);
    }
  }
}
