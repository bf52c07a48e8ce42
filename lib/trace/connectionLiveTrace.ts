/**
 * State changes of one program's own connection, printed as they happen (peer.ts --trace). The
 * connect() retries of a simultaneous-open dial (CLOSED → SYN_SENT → CLOSED, many per second) are
 * counted, not printed: they are not the connection that opened.
 */
import { isIP } from 'node:net';
import type { Endpoint } from '../core/types.ts';
import { PathBuilder, sideKey } from './connectionPaths.ts';
import { formatEndpoints, formatSourceLabel } from './formatPaths.ts';
import { type SourceChoice, startStateTrace } from './startTrace.ts';
import type { TraceEvent } from './types.ts';

const WILDCARDS = new Set(['0.0.0.0', '::', undefined]);

export interface LiveTraceOptions {
  /** Our socket's local endpoint (host undefined or a wildcard: any address). */
  local: { host?: string; port: number };
  /** Connections to these endpoints are not the one to show (a rendezvous server, say). */
  ignoreRemotes?: Endpoint[];
  write: (line: string) => void;
  source?: SourceChoice;
}

/** Turns events into lines; pure apart from calling write. */
export function createLivePrinter(
  write: (line: string) => void,
  originUs: number,
  isOurs: (side: Pick<TraceEvent, 'local' | 'remote'>) => boolean,
): (event: TraceEvent) => void {
  // Only open paths are kept: a dial retrying for hours makes many attempts.
  const builder = new PathBuilder(originUs, { retain: false });
  const held = new Map<string, string>();
  let failedAttempts = 0;
  return (event) => {
    if (!isOurs(event)) return;
    const key = sideKey(event);
    const path = builder.add(event);
    if (!path) {
      // A RST answering a retried SYN is part of the dial's noise.
      if (!held.has(key)) write(`trace: ${formatEndpoints(event)}  RST received`);
      return;
    }
    const step = path.steps.at(-1);
    const previous = path.steps.at(-2);
    if (!step || !previous) return;
    const line = `trace: +${step.offsetUs}µs ${formatEndpoints(path)}  ${previous.state} → ${step.state}${step.inferred ? '* (inferred: handed to a TIME_WAIT mini-socket)' : ''}`;
    if (path.states.length === 2 && step.state === 'SYN_SENT') {
      held.set(key, line);
      return;
    }
    if (held.has(key) && step.state === 'CLOSED') {
      held.delete(key);
      failedAttempts += 1;
      return;
    }
    if (failedAttempts) {
      write(`trace: (${failedAttempts} earlier connect attempts went CLOSED → SYN_SENT → CLOSED)`);
      failedAttempts = 0;
    }
    const heldLine = held.get(key);
    if (heldLine) write(heldLine);
    held.delete(key);
    write(line);
  };
}

export interface LiveTrace {
  /** Leaves connections to this endpoint out from now on (a server port learned after the start). */
  ignoreRemote(remote: Endpoint): void;
  /** Waits (up to limitMs) for our connection's path to end, prints the rest, removes the tracer. */
  stop(limitMs?: number): Promise<void>;
}

export function startLiveTrace(options: LiveTraceOptions): LiveTrace {
  const { local, write } = options;
  // The kernel reports addresses: a remote given by name is matched on its port alone.
  const ignoredKey = (remote: Endpoint) => `${isIP(remote.host) ? remote.host : '*'}|${remote.port}`;
  const ignored = new Set((options.ignoreRemotes ?? []).map(ignoredKey));
  const isOurs = (side: Pick<TraceEvent, 'local' | 'remote'>) =>
    side.local.port === local.port &&
    (WILDCARDS.has(local.host) || side.local.host === local.host) &&
    !ignored.has(`${side.remote.host}|${side.remote.port}`) &&
    !ignored.has(`*|${side.remote.port}`);
  let print: ((event: TraceEvent) => void) | undefined;
  // Our open paths, to wait for the connection's last transitions at stop (nothing else is kept).
  let open: PathBuilder | undefined;
  const trace = startStateTrace({
    portRange: { first: local.port, last: local.port },
    retainEvents: false,
    retainPaths: false,
    ...(options.source ? { source: options.source } : {}),
    onEvent: (event) => {
      print?.(event);
      if (isOurs(event)) open?.add(event);
    },
  });
  print = createLivePrinter(write, trace.startedUs, isOurs);
  open = new PathBuilder(trace.startedUs, { retain: false });
  const ours = open;
  write(`trace: ${formatSourceLabel(trace.label)}`);
  return {
    ignoreRemote(remote) {
      ignored.add(ignoredKey(remote));
    },
    async stop(limitMs = 2000) {
      const until = Date.now() + limitMs;
      const connectionOpen = () =>
        Array.from(ours.openPaths()).some(
          // A sampled TIME_WAIT is still in the table, but the connection is done.
          (path) => path.states.includes('ESTABLISHED') && path.states.at(-1) !== 'TIME_WAIT',
        );
      // The last ACK or FIN of the close may still be on its way when the chat ends.
      while (Date.now() < until && connectionOpen()) {
        trace.drain();
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      await trace.stop();
    },
  };
}
