/**
 * The four classic paths produced on real sockets and traced by the kernel, for `trace.ts --demo`
 * and the tests. Runs inside a private network namespace (lib/core/sandbox.ts): the demos install nft
 * rules there that hold SYNs or FINs until both sides have sent theirs, so that the retransmissions
 * cross. Where kernel timing still decides, a demo repeats (on fresh ports) until the trace shows the
 * path, and says how many tries that took.
 */
import { execFileSync } from 'node:child_process';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { applyNft } from '../core/sandbox.ts';
import { containsSequence, summarizeConnections } from './connectionPaths.ts';
import { type KernelTrace, startKernelTrace } from './kernelTracepoint.ts';
import { isInTimeWait, readSocketTable } from './socketTableSampler.ts';
import type { ConnectionPath, TcpState, TraceEvent } from './types.ts';

export const DEMO_KINDS = ['simultaneous-open', 'simultaneous-close', 'normal-open', 'normal-close'] as const;
export type DemoKind = (typeof DEMO_KINDS)[number];

export interface ExpectedSide {
  role: string;
  states: TcpState[];
}

/** The paths of the issue (TIME_WAIT's end, 60 s later in an untraced mini-socket, left out). */
export const EXPECTED_PATHS: Record<DemoKind, [ExpectedSide, ExpectedSide]> = {
  'simultaneous-open': [
    { role: 'A', states: ['CLOSED', 'SYN_SENT', 'SYN_RECEIVED', 'ESTABLISHED'] },
    { role: 'B', states: ['CLOSED', 'SYN_SENT', 'SYN_RECEIVED', 'ESTABLISHED'] },
  ],
  'simultaneous-close': [
    { role: 'A', states: ['ESTABLISHED', 'FIN_WAIT_1', 'CLOSING', 'TIME_WAIT'] },
    { role: 'B', states: ['ESTABLISHED', 'FIN_WAIT_1', 'CLOSING', 'TIME_WAIT'] },
  ],
  'normal-open': [
    { role: 'client', states: ['CLOSED', 'SYN_SENT', 'ESTABLISHED'] },
    { role: 'server', states: ['LISTEN', 'SYN_RECEIVED', 'ESTABLISHED'] },
  ],
  'normal-close': [
    { role: 'active', states: ['ESTABLISHED', 'FIN_WAIT_1', 'FIN_WAIT_2', 'TIME_WAIT'] },
    { role: 'passive', states: ['ESTABLISHED', 'CLOSE_WAIT', 'LAST_ACK', 'CLOSED'] },
  ],
};

/**
 * The tracepoint is global: it also sees other namespaces' sockets, which may use the same ports.
 * A loopback address of our own (all of 127/8 is local on lo) tells ours apart.
 */
const HOST = `127.31.${(process.pid >> 8) & 255}.${process.pid & 255}`;

export interface DemoTry {
  try: number;
  ports: [number, number];
  /** The two sides' paths, side 0 on ports[0]. Missing if the side never showed up. */
  sides: [ConnectionPath | undefined, ConnectionPath | undefined];
  matched: boolean;
  /** Why this try did not show the path, if it did not. */
  miss?: string;
}

export interface DemoResult {
  demo: DemoKind;
  expected: [ExpectedSide, ExpectedSide];
  /** Tries it took; equal to tries.length. */
  triesNeeded: number;
  matched: boolean;
  tries: DemoTry[];
  /** All paths and raw events of the last try (including listener and failed attempts). */
  paths: ConnectionPath[];
  events: TraceEvent[];
  openKind?: string;
  closeKinds?: (string | undefined)[];
  /** Trace instances used (all removed by the time the result is returned). */
  instances: string[];
  /** `nft list ruleset` of the namespace after the demo: the hold rules must be gone. */
  nftAfter: string;
  /** Inferred TIME_WAITs found in this namespace's socket table (/proc/net/tcp state 06). */
  timeWaitConfirmed: { side: number; confirmed: boolean }[];
}

export interface DemoOptions {
  maxTries?: number;
  /** First port; try n uses basePort + 2n and basePort + 2n + 1 (a fresh 4-tuple: no TIME_WAIT clash). */
  basePort?: number;
  signal?: AbortSignal;
  onTry?: (attempt: DemoTry) => void;
}

const HOLD_TABLE = `simopen_hold_${process.pid}`;

/** Drops SYN-only or FIN packets to the two ports on lo until released. */
function holdPackets(what: 'syn' | 'fin', ports: [number, number]): () => void {
  const match = what === 'syn' ? 'tcp flags & (syn | ack) == syn' : 'tcp flags & (fin) == fin';
  applyNft(`
table inet ${HOLD_TABLE} {
  chain out {
    type filter hook output priority -10;
    oifname "lo" tcp dport { ${ports[0]}, ${ports[1]} } ${match} drop
  }
}
`);
  let released = false;
  return () => {
    if (released) return;
    released = true;
    applyNft(`delete table inet ${HOLD_TABLE}\n`);
  };
}

function pathsOf(trace: KernelTrace): ConnectionPath[] {
  trace.drain();
  return trace.paths;
}

function sideOn(paths: ConnectionPath[], local: number, remote: number): ConnectionPath | undefined {
  return paths.filter((path) => path.local.port === local && path.remote.port === remote).at(-1);
}

/** Polls the trace until `done` holds for the current paths, or `limitMs` passes. */
async function waitForTrace(
  trace: KernelTrace,
  done: (paths: ConnectionPath[]) => boolean,
  limitMs: number,
  signal?: AbortSignal,
): Promise<boolean> {
  const until = Date.now() + limitMs;
  for (;;) {
    signal?.throwIfAborted();
    if (done(pathsOf(trace))) return true;
    if (Date.now() > until) return false;
    await sleep(5);
  }
}

function event(socket: net.Socket | net.Server, name: string, limitMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no '${name}' within ${limitMs} ms`)), limitMs);
    socket.once(name, () => {
      clearTimeout(timer);
      resolve();
    });
    socket.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}

function connectFrom(localPort: number, remotePort: number): net.Socket {
  const socket = net.connect({ host: HOST, port: remotePort, localAddress: HOST, localPort });
  socket.resume();
  return socket;
}

const endedPath = (path: ConnectionPath | undefined) =>
  path !== undefined && ['CLOSED', 'TIME_WAIT'].includes(path.states.at(-1) ?? '');

/**
 * One simultaneous open from one thread, made deterministic by the sandbox's early-RST rule: the first
 * SYN finds a closed port, its RST is dropped, and the second SYN meets the first socket in SYN_SENT.
 */
async function openSimultaneously(ports: [number, number]): Promise<[net.Socket, net.Socket]> {
  const a = connectFrom(ports[0], ports[1]);
  const b = connectFrom(ports[1], ports[0]);
  await Promise.all([event(a, 'connect', 10_000), event(b, 'connect', 10_000)]);
  return [a, b];
}

async function runTry(kind: DemoKind, ports: [number, number], trace: KernelTrace, signal?: AbortSignal) {
  const [portA, portB] = ports;
  const sockets: (net.Socket | net.Server)[] = [];
  const bothReached = (from: TcpState, to: TcpState) => (paths: ConnectionPath[]) =>
    [sideOn(paths, portA, portB), sideOn(paths, portB, portA)].every((path) =>
      containsSequence(path?.states ?? [], [from, to]),
    );
  const bothEnded = (paths: ConnectionPath[]) =>
    endedPath(sideOn(paths, portA, portB)) && endedPath(sideOn(paths, portB, portA));
  let release: (() => void) | undefined;
  try {
    if (kind === 'simultaneous-open') {
      release = holdPackets('syn', ports);
      const a = connectFrom(portA, portB);
      const b = connectFrom(portB, portA);
      sockets.push(a, b);
      const connected = Promise.all([event(a, 'connect', 10_000), event(b, 'connect', 10_000)]);
      connected.catch(() => {});
      // Both SYNs have left (and been dropped) once both sockets are in SYN_SENT: let the retransmissions go.
      if (!(await waitForTrace(trace, bothReached('CLOSED', 'SYN_SENT'), 5_000, signal)))
        throw new Error('the sockets did not reach SYN_SENT');
      release();
      await connected;
      a.end();
    } else if (kind === 'normal-open') {
      const server = net.createServer((socket) => socket.resume());
      sockets.push(server);
      server.listen(portB, HOST);
      await event(server, 'listening', 5_000);
      const client = connectFrom(portA, portB);
      sockets.push(client);
      await event(client, 'connect', 10_000);
      client.end();
    } else {
      const [a, b] = await openSimultaneously(ports);
      sockets.push(a, b);
      if (kind === 'simultaneous-close') {
        release = holdPackets('fin', ports);
        a.end();
        b.end();
        if (!(await waitForTrace(trace, bothReached('ESTABLISHED', 'FIN_WAIT_1'), 5_000, signal)))
          throw new Error('the sockets did not reach FIN_WAIT_1');
        release();
      } else {
        a.end();
      }
    }
    // Closing takes the retransmission timeout when FINs were held (about 200 ms) plus the final ACKs.
    await waitForTrace(trace, bothEnded, 10_000, signal);
  } finally {
    release?.();
    for (const socket of sockets) {
      if (socket instanceof net.Server) socket.close();
      else socket.destroy();
    }
  }
}

export async function runDemo(kind: DemoKind, options: DemoOptions = {}): Promise<DemoResult> {
  const maxTries = options.maxTries ?? 20;
  const basePort = options.basePort ?? 31000;
  const expected = EXPECTED_PATHS[kind];
  const tries: DemoTry[] = [];
  const instances: string[] = [];
  let last: { paths: ConnectionPath[]; events: TraceEvent[] } = { paths: [], events: [] };
  for (let attempt = 1; attempt <= maxTries; attempt++) {
    options.signal?.throwIfAborted();
    const ports: [number, number] = [basePort + 2 * (attempt - 1), basePort + 2 * (attempt - 1) + 1];
    const trace = startKernelTrace({ portRange: { first: ports[0], last: ports[1] }, hosts: [HOST] });
    instances.push(trace.instance);
    let miss: string | undefined;
    try {
      await runTry(kind, ports, trace, options.signal);
    } catch (error) {
      if (options.signal?.aborted) {
        await trace.stop();
        throw error;
      }
      miss = (error as Error).message;
    }
    const paths = await trace.stop();
    last = { paths, events: [...trace.events] };
    const sides: DemoTry['sides'] = [sideOn(paths, ports[0], ports[1]), sideOn(paths, ports[1], ports[0])];
    const matched = sides.every((side, index) =>
      containsSequence(side?.states ?? [], expected[index]?.states ?? []),
    );
    if (!matched && !miss)
      miss = sides
        .map((side, index) => `side ${index}: ${side?.states.join(' → ') ?? 'not seen'}`)
        .join('; ');
    const record: DemoTry = { try: attempt, ports, sides, matched, ...(miss && !matched ? { miss } : {}) };
    tries.push(record);
    options.onTry?.(record);
    if (matched) break;
  }
  const final = tries.at(-1);
  const summary = summarizeConnections(last.paths);
  const pair = summary.pairs.find((candidate) => candidate.sides.includes(final?.sides[0]));
  const table = readSocketTable();
  return {
    demo: kind,
    expected,
    triesNeeded: tries.length,
    matched: final?.matched ?? false,
    tries,
    paths: last.paths,
    events: last.events,
    ...(pair ? { openKind: pair.open, closeKinds: pair.close } : {}),
    instances,
    nftAfter: execFileSync('nft', ['list', 'ruleset'], { encoding: 'utf8' }),
    timeWaitConfirmed: (final?.sides ?? []).flatMap((side, index) =>
      side?.steps.some((step) => step.inferred)
        ? [{ side: index, confirmed: isInTimeWait(side, table) }]
        : [],
    ),
  };
}
