/**
 * --hold inside a worker thread: the thread's held pairs (or, in an agent, sides) in the order their
 * next keepalive is due, and one timer for all of them. Every one has the same interval and the same
 * hold, so one put back after its keepalive goes to the end and the queue stays sorted: no per-pair
 * timers, no heap.
 */
import { performance } from 'node:perf_hooks';
import type { HoldSchedule as Schedule } from './sandboxPair.ts';

/** What the schedule holds: a sandbox pair, or an agent's side of a pair. */
export interface Held {
  /** When the next keepalive (or the end of the hold) is due, on performance.now()'s clock. */
  readonly nextKeepaliveAt: number;
  /** Called when it is due; true while it stays in the schedule. */
  keepalive(): boolean;
}

export class HoldSchedule implements Schedule {
  private queue: Held[] = [];
  private head = 0;
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Number.POSITIVE_INFINITY;
  private readonly run = () => this.due();

  constructor(
    readonly holdMs: number,
    readonly keepaliveMs: number,
  ) {}

  add(pair: Held): void {
    this.queue.push(pair);
    this.arm();
  }

  /** Held pairs in the queue (some may have failed since; they leave when their turn comes). */
  get size(): number {
    return this.queue.length - this.head;
  }

  private arm(): void {
    const next = this.queue[this.head];
    if (!next) return;
    if (this.timer && this.timerAt <= next.nextKeepaliveAt) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerAt = next.nextKeepaliveAt;
    this.timer = setTimeout(this.run, Math.max(0, next.nextKeepaliveAt - performance.now()));
  }

  private due(): void {
    this.timer = undefined;
    this.timerAt = Number.POSITIVE_INFINITY;
    const now = performance.now();
    // Only the pairs due now: those put back are due an interval later, behind the others.
    const end = this.queue.length;
    while (this.head < end) {
      const pair = this.queue[this.head] as Held;
      if (pair.nextKeepaliveAt > now) break;
      this.head += 1;
      if (pair.keepalive()) this.queue.push(pair);
    }
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    this.arm();
  }
}
