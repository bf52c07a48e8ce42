/**
 * Progress while a stress run goes: on a terminal, a bar redrawn in place on stderr (done/total,
 * pairs/s, failures, ETA); elsewhere (CI, pipes) a status line on stderr every few seconds.
 */

export interface ProgressCounts {
  established: number;
  failed: number;
  cancelled: number;
  /** Pairs that will not start (a stop came first). */
  notStarted?: number;
  /** --hold: pairs open now (established, held, not closed yet). */
  open?: number;
}

export interface ProgressOptions {
  /** What is in progress, before the counts ("warm-up"); the run itself has none. */
  label?: string;
  /** Pairs planned; undefined when the run is bounded by time. */
  total: number | undefined;
  durationMs: number | undefined;
  read: () => ProgressCounts;
  stream?: NodeJS.WriteStream;
  /** Status line period when not on a terminal. */
  lineIntervalMs?: number;
}

function formatCount(value: number): string {
  return Math.round(value).toLocaleString('en-US');
}

export function formatSeconds(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const whole = Math.round(seconds);
  const minutes = Math.floor(whole / 60);
  return `${minutes}:${String(whole % 60).padStart(2, '0')}`;
}

export class ProgressTracker {
  private timer: NodeJS.Timeout | undefined;
  private readonly stream: NodeJS.WriteStream;
  private readonly tty: boolean;
  private startedAt = 0;
  private last = { at: 0, done: 0 };
  private drawn = false;

  constructor(private readonly options: ProgressOptions) {
    this.stream = options.stream ?? process.stderr;
    this.tty = Boolean(this.stream.isTTY);
  }

  start(): void {
    this.startedAt = performance.now();
    this.last = { at: this.startedAt, done: 0 };
    this.timer = setInterval(() => this.tick(), this.tty ? 250 : (this.options.lineIntervalMs ?? 5000));
    this.timer.unref();
  }

  /** Stops and clears the bar, so the report starts on a clean line. */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (this.tty && this.drawn) this.stream.write('\r\x1b[K');
  }

  /** One line describing the state now (also used for the status line). */
  describe(now = performance.now()): { line: string; fraction: number | undefined } {
    const counts = this.options.read();
    const { total, durationMs } = this.options;
    // A crashed worker's batch is counted again as failed: never show more than planned.
    const counted = counts.established + counts.failed + counts.cancelled + (counts.notStarted ?? 0);
    const done = total === undefined ? counted : Math.min(total, counted);
    const elapsedS = (now - this.startedAt) / 1000;
    const windowS = (now - this.last.at) / 1000;
    const rate = windowS > 0 ? (done - this.last.done) / windowS : 0;
    const average = elapsedS > 0 ? done / elapsedS : 0;
    let fraction: number | undefined;
    let eta = '?';
    if (total !== undefined && total > 0) {
      fraction = Math.min(1, done / total);
      if (average > 0) eta = formatSeconds((total - done) / average);
    }
    if (durationMs !== undefined) {
      const byTime = Math.min(1, (elapsedS * 1000) / durationMs);
      fraction = fraction === undefined ? byTime : Math.max(fraction, byTime);
      eta = formatSeconds(Math.max(0, durationMs / 1000 - elapsedS));
    }
    const of = total !== undefined ? `/${formatCount(total)}` : '';
    const percent = fraction !== undefined ? ` ${(fraction * 100).toFixed(0).padStart(3)}%` : '';
    const label = this.options.label ? `${this.options.label}: ` : '';
    const line = `${label}${formatCount(done)}${of}${percent}  ${formatCount(rate)} pairs/s  ${formatCount(counts.failed)} failed${
      counts.cancelled ? `  ${formatCount(counts.cancelled)} cancelled` : ''
    }${counts.open !== undefined ? `  ${formatCount(counts.open)} held` : ''}  ETA ${eta}`;
    return { line, fraction };
  }

  private tick(): void {
    const now = performance.now();
    const { line, fraction } = this.describe(now);
    const counts = this.options.read();
    this.last = {
      at: now,
      done: counts.established + counts.failed + counts.cancelled + (counts.notStarted ?? 0),
    };
    if (this.tty) {
      const width = 24;
      const filled = Math.round((fraction ?? 0) * width);
      this.stream.write(`\r\x1b[K[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${line}`);
      this.drawn = true;
    } else {
      this.stream.write(`stress: ${line}\n`);
    }
  }
}
