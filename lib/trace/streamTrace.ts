/**
 * trace.ts's tracing run: the best available tracer feeding a ConnectionStream, each connection
 * written to the output as soon as it is over, inferred TIME_WAITs checked in the socket table in
 * batches, and a summary at the end. Memory stays bounded by what is open at once (see
 * lib/trace/connectionStream.ts), whatever the length of the trace.
 */
import type { PortRange } from '../core/types.ts';
import { ConnectionStream } from './connectionStream.ts';
import { formatEndpoints } from './formatPaths.ts';
import { monotonicNowUs } from './kernelTracepoint.ts';
import { readSocketTable } from './socketTableSampler.ts';
import { type SourceChoice, startStateTrace } from './startTrace.ts';
import type { TraceOutput } from './traceOutput.ts';
import type { ConnectionPath, SourceLabel, TimeWaitCheck, TracedItem, TraceSummary } from './types.ts';

/** How often held lines are let out, the output flushed and pending TIME_WAITs checked. */
const TICK_MS = 100;
/** Pending TIME_WAIT checks wait at most this long (one read of the socket table serves them all). */
const TIME_WAIT_CHECK_MS = 1000;

/** Inferred TIME_WAITs looked up in this network namespace's socket table, a batch at a time. */
class TimeWaitChecks {
  confirmed = 0;
  notConfirmed = 0;
  private pending: Pick<ConnectionPath, 'local' | 'remote'>[] = [];
  private lastCheck = Date.now();

  constructor(private readonly report: (check: TimeWaitCheck) => void) {}

  note(item: TracedItem): void {
    const sides = item.kind === 'connection' ? item.pair.sides : [item.path];
    for (const side of sides)
      if (side?.steps.some((step) => step.inferred))
        this.pending.push({ local: side.local, remote: side.remote });
  }

  checkIfDue(): void {
    if (this.pending.length && Date.now() - this.lastCheck >= TIME_WAIT_CHECK_MS) this.check();
  }

  check(): void {
    this.lastCheck = Date.now();
    if (this.pending.length === 0) return;
    const inTimeWait = new Set<string>();
    for (const row of readSocketTable()) if (row.state === 'TIME_WAIT') inTimeWait.add(formatEndpoints(row));
    for (const side of this.pending) {
      const confirmed = inTimeWait.has(formatEndpoints(side));
      if (confirmed) this.confirmed += 1;
      else this.notConfirmed += 1;
      this.report({ endpoints: formatEndpoints(side), confirmed });
    }
    this.pending = [];
  }
}

export interface StreamTraceOptions {
  source?: SourceChoice;
  portRange?: PortRange;
  hosts?: string[];
  /** Most sides kept at once (default lib/trace/connectionStream.ts DEFAULT_MAX_OPEN). */
  maxOpen?: number;
  /** The kernel ring buffer per CPU in KiB (kernel source). */
  bufferKb?: number;
  confirmTimeWait?: boolean;
  /** Named in the start record. */
  command?: string[];
  output: TraceOutput;
  /** Writes out what the output has buffered. */
  flush: () => void;
}

export interface StreamTrace {
  readonly label: SourceLabel;
  readonly instance?: string;
  /** Reads the rest, gives out what is still open, writes the summary; the tracer is gone after. */
  stop(exitCode?: number): Promise<TraceSummary>;
}

/** Starts tracing into the output (throws, with the reason, when --source kernel cannot be had). */
export function startStreamTrace(options: StreamTraceOptions): StreamTrace {
  const { output, flush } = options;
  const checks = options.confirmTimeWait ? new TimeWaitChecks((check) => output.timeWait(check)) : undefined;
  let stream: ConnectionStream | undefined;
  const trace = startStateTrace({
    ...(options.source ? { source: options.source } : {}),
    ...(options.portRange ? { portRange: options.portRange } : {}),
    ...(options.hosts ? { hosts: options.hosts } : {}),
    ...(options.bufferKb ? { bufferSizeKb: options.bufferKb } : {}),
    retainEvents: false,
    retainPaths: false,
    onEvent: (event) => {
      output.event(event);
      stream?.add(event);
    },
  });
  stream = new ConnectionStream({
    originUs: trace.startedUs,
    ...(options.maxOpen ? { maxOpen: options.maxOpen } : {}),
    onItem: (item) => {
      output.item(item);
      checks?.note(item);
    },
  });
  const connections = stream;
  output.start({
    label: trace.label,
    ...(trace.instance ? { instance: trace.instance } : {}),
    ...(options.portRange ? { portRange: options.portRange } : {}),
    ...(options.hosts ? { hosts: options.hosts } : {}),
    ...(options.command ? { command: options.command } : {}),
    maxOpen: connections.maxOpen,
  });
  flush();
  const timer = setInterval(() => {
    output.tick(monotonicNowUs());
    checks?.checkIfDue();
    flush();
  }, TICK_MS);
  let summary: TraceSummary | undefined;
  return {
    label: trace.label,
    ...(trace.instance ? { instance: trace.instance } : {}),
    async stop(exitCode) {
      if (summary) return summary;
      clearInterval(timer);
      try {
        await trace.stop();
      } finally {
        connections.finish();
        checks?.check();
        summary = {
          label: trace.label,
          ...(trace.instance ? { instance: trace.instance } : {}),
          lostEvents: trace.lostEvents,
          counts: connections.counts,
          untracked: connections.untracked,
          maxOpen: connections.maxOpen,
          peakKept: connections.peakKept,
          ...(checks ? { timeWait: { confirmed: checks.confirmed, notConfirmed: checks.notConfirmed } } : {}),
          // resourceUsage's maxRSS is in KiB.
          peakRssBytes: process.resourceUsage().maxRSS * 1024,
          ...(exitCode !== undefined ? { exitCode } : {}),
        };
        output.end(summary);
        flush();
      }
      return summary;
    },
  };
}
