/**
 * Where a streaming trace goes: NDJSON records (one per path and connection as they are over, then
 * a summary) or the text report, both written through a line buffer so that a long trace costs one
 * write per batch of lines and never a document held in memory. The record format is described in
 * docs/guarantees.md (trace.ts).
 */
import { formatKindCounts, TextTraceReport } from './formatPaths.ts';
import type {
  ConnectionPath,
  TimeWaitCheck,
  TracedItem,
  TraceEvent,
  TraceStart,
  TraceSummary,
} from './types.ts';

export interface TraceOutput {
  start(start: TraceStart): void;
  /** A raw event as it is read. */
  event(event: TraceEvent): void;
  item(item: TracedItem): void;
  timeWait(check: TimeWaitCheck): void;
  /** Called now and then with the trace clock's time (lets held lines out). */
  tick(nowUs: number): void;
  end(summary: TraceSummary): void;
}

/** Collects lines and writes them in batches of about 64 KiB (and on flush()). */
export class LineWriter {
  private chunks: string[] = [];
  private size = 0;

  constructor(private readonly sink: (text: string) => void) {}

  line(text: string): void {
    this.chunks.push(text);
    this.size += text.length + 1;
    if (this.size >= 1 << 16) this.flush();
  }

  flush(): void {
    if (this.chunks.length === 0) return;
    const text = `${this.chunks.join('\n')}\n`;
    this.chunks = [];
    this.size = 0;
    this.sink(text);
  }
}

function pathRecord(path: ConnectionPath): string {
  return JSON.stringify({ type: 'path', ...path });
}

/**
 * NDJSON: a `start` record, then (with `events`) each raw event as read (`state` and `reset`
 * records), a `path` record per path as it is over (a connection's sides right before its `pair`
 * record), `timeWait` records, and a `summary` record last.
 */
export class NdjsonTraceOutput implements TraceOutput {
  constructor(
    private readonly write: (line: string) => void,
    private readonly options: { events: boolean },
  ) {}

  start(start: TraceStart): void {
    this.write(
      JSON.stringify({
        type: 'start',
        ...start.label,
        ...(start.instance ? { instance: start.instance } : {}),
        ...(start.portRange ? { ports: start.portRange } : {}),
        ...(start.hosts ? { hosts: start.hosts } : {}),
        ...(start.command ? { command: start.command } : {}),
        maxOpen: start.maxOpen,
      }),
    );
  }

  event(event: TraceEvent): void {
    if (this.options.events) this.write(JSON.stringify(event));
  }

  item(item: TracedItem): void {
    if (item.kind !== 'connection') {
      this.write(pathRecord(item.path));
      return;
    }
    const { sides, open, close } = item.pair;
    for (const side of sides) if (side) this.write(pathRecord(side));
    this.write(
      JSON.stringify({
        type: 'pair',
        sides: [sides[0], sides[1]].map((side) => (side ? { local: side.local, remote: side.remote } : null)),
        open,
        close: [close[0], close[1] ?? null],
      }),
    );
  }

  timeWait(check: TimeWaitCheck): void {
    this.write(JSON.stringify({ type: 'timeWait', ...check }));
  }

  tick(): void {}

  end(summary: TraceSummary): void {
    const { counts } = summary;
    this.write(
      JSON.stringify({
        type: 'summary',
        ...summary.label,
        ...(summary.instance ? { instance: summary.instance } : {}),
        lostEvents: summary.lostEvents,
        paths: counts.paths,
        pairs: counts.connections,
        listeners: counts.listeners,
        failedAttempts: counts.failedAttempts,
        openKinds: counts.openKinds,
        closeKinds: counts.closeKinds,
        untracked: summary.untracked,
        maxOpen: summary.maxOpen,
        peakKept: summary.peakKept,
        ...(summary.timeWait ? { timeWait: summary.timeWait } : {}),
        peakRssBytes: summary.peakRssBytes,
        ...(summary.exitCode !== undefined ? { exitCode: summary.exitCode } : {}),
      }),
    );
  }
}

/** The text report (lib/trace/formatPaths.ts) with the socket-table checks, warnings and a summary line. */
export class TextTraceOutput implements TraceOutput {
  private readonly report: TextTraceReport;

  constructor(private readonly write: (line: string) => void) {
    this.report = new TextTraceReport(write);
  }

  start(start: TraceStart): void {
    this.report.start(start.label);
  }

  event(): void {}

  item(item: TracedItem): void {
    this.report.item(item);
  }

  timeWait(check: TimeWaitCheck): void {
    this.report.note(
      `socket table: ${check.endpoints} ${check.confirmed ? 'in TIME_WAIT (confirmed)' : 'not in TIME_WAIT'}`,
    );
  }

  tick(nowUs: number): void {
    this.report.tick(nowUs);
  }

  end(summary: TraceSummary): void {
    this.report.end();
    const { counts } = summary;
    if (summary.lostEvents)
      this.write(
        `WARNING: the kernel dropped ${summary.lostEvents.toLocaleString('en-US')} events (ring buffer full: raise --buffer-kb); the paths around them are incomplete`,
      );
    if (summary.untracked)
      this.write(
        `WARNING: ${summary.untracked.toLocaleString('en-US')} sides were given out before they ended: more than --max-open ${summary.maxOpen.toLocaleString('en-US')} were open at once`,
      );
    const plural = (count: number, word: string) =>
      `${count.toLocaleString('en-US')} ${word}${count === 1 ? '' : 's'}`;
    this.write(
      `summary: ${plural(counts.connections, 'connection')} (open kinds ${formatKindCounts(counts.openKinds)}; close kinds ${formatKindCounts(counts.closeKinds)} per side), ${plural(counts.listeners, 'listener')}, ${plural(counts.failedAttempts, 'failed attempt')}`,
    );
  }
}
