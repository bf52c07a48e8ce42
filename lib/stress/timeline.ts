/**
 * The run's progress over time for the report: the main thread samples the counters the workers
 * already keep (the shared control block), so the hot path is untouched. At most `maxPoints` points
 * whatever the run's length: when they are full, every other one is dropped and the interval doubles.
 * Points hold cumulative counts, so dropping one loses resolution, never a pair.
 */
import type { ProgressCounts } from './progressTracker.ts';
import type { Timeline, TimelinePoint } from './types.ts';

/** The first interval: fine enough for a run of a second; it doubles as the run goes on. */
export const TIMELINE_INTERVAL_MS = 25;
export const TIMELINE_MAX_POINTS = 512;

export class TimelineSampler {
  private points: TimelinePoint[] = [];
  private intervalMs: number;
  private startedAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private result: Timeline | undefined;

  constructor(
    private readonly read: () => ProgressCounts,
    private readonly maxPoints = TIMELINE_MAX_POINTS,
    intervalMs = TIMELINE_INTERVAL_MS,
  ) {
    this.intervalMs = intervalMs;
  }

  /** The first point (all zero counts, or what is counted already) at `now`, then one per interval. */
  start(now = performance.now()): void {
    this.startedAt = now;
    this.running = true;
    this.sample(now);
    this.schedule();
  }

  /** Records a point now (the timer calls it; a test may too). */
  sample(now = performance.now()): void {
    const counts = this.read();
    this.points.push([
      Math.round((now - this.startedAt) * 10) / 10,
      counts.established,
      counts.failed,
      counts.cancelled,
    ]);
    if (this.points.length > this.maxPoints) {
      this.points = this.points.filter((_, index) => index % 2 === 0);
      this.intervalMs *= 2;
      this.schedule();
    }
  }

  /** Stops sampling; the last point is the end. Again: the same timeline, nothing added. */
  stop(now = performance.now()): Timeline {
    if (this.result) return this.result;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.running = false;
    if (this.points.length) this.sample(now);
    this.result = { intervalMs: this.intervalMs, points: this.points };
    return this.result;
  }

  private schedule(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (!this.running) return;
    this.timer = setInterval(() => this.sample(), this.intervalMs);
    this.timer.unref();
  }
}
