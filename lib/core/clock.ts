/**
 * Time as the runs share it across threads and processes, and the one wake-up a pump of due work
 * keeps.
 */
import { performance } from 'node:perf_hooks';

/** Milliseconds since the epoch, to a fraction of a millisecond (performance's origin plus its clock). */
export function epochNow(): number {
  return performance.timeOrigin + performance.now();
}

/**
 * One pending wake-up of a pump that starts what is due. Timers fire a millisecond late or more, so it
 * sleeps until about a millisecond before and then polls (setImmediate) until the work is due.
 */
export class Waker {
  private timer: NodeJS.Timeout | NodeJS.Immediate | undefined;

  constructor(private readonly wake: () => void) {}

  /** Calls the pump in about delayMs; nothing while a wake-up is pending. */
  in(delayMs: number): void {
    if (this.timer) return;
    const fire = () => {
      this.timer = undefined;
      this.wake();
    };
    this.timer = delayMs > 2 ? setTimeout(fire, delayMs - 1.5) : setImmediate(fire);
  }
}
