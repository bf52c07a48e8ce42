/**
 * A trace of any length in bounded memory: events become paths, a connection is given out (both
 * sides paired and classified) as soon as it is over, and only what is still open is kept. Past
 * `maxOpen` open sides the oldest is given out as it is (marked untracked), so a flood of
 * connections that never close, or events the kernel lost, cannot grow the state without end.
 */
import { ConnectionPairer, countItem, emptyCounts, PathBuilder } from './connectionPaths.ts';
import type { TraceCounts, TracedItem, TraceEvent } from './types.ts';

/** Default bound on the sides kept at once (open, or ended and waiting for the other side). */
export const DEFAULT_MAX_OPEN = 100_000;

export interface ConnectionStreamOptions {
  /** The zero of the offsets (default: the first event's time). */
  originUs?: number;
  /** Most sides kept at once (default DEFAULT_MAX_OPEN). */
  maxOpen?: number;
  onItem: (item: TracedItem) => void;
}

export class ConnectionStream {
  readonly counts: TraceCounts = emptyCounts();
  /** Sides given out before they ended because of maxOpen. */
  untracked = 0;
  /** The most sides kept at once during the trace. */
  peakKept = 0;
  readonly maxOpen: number;
  private readonly builder: PathBuilder;
  private readonly pairer: ConnectionPairer;
  private finished = false;

  constructor(options: ConnectionStreamOptions) {
    this.maxOpen = options.maxOpen ?? DEFAULT_MAX_OPEN;
    this.pairer = new ConnectionPairer(
      (key) => this.builder.openPath(key),
      (item) => {
        countItem(this.counts, item);
        options.onItem(item);
      },
    );
    this.builder = new PathBuilder(options.originUs, {
      retain: false,
      onEnd: (path) => this.pairer.ended(path),
    });
  }

  /** Sides kept now: open ones and ended ones waiting for their peer. */
  get kept(): number {
    return this.builder.openCount + this.pairer.waitingCount;
  }

  add(event: TraceEvent): void {
    if (this.finished) return;
    this.builder.add(event);
    while (this.kept > this.maxOpen) {
      const oldest = this.builder.letGoOldest();
      if (!oldest) break;
      oldest.untracked = true;
      this.untracked += 1;
      this.pairer.ended(oldest, false);
    }
    if (this.kept > this.peakKept) this.peakKept = this.kept;
  }

  /** The end of the trace: everything still open is given out as it is. Later events are ignored. */
  finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.pairer.finish(this.builder.letGoAll());
  }
}
