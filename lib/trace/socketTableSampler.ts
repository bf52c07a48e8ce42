/**
 * The fallback when tracefs cannot be used: sample /proc/net/tcp and /proc/net/tcp6 (this network
 * namespace's sockets) and turn differences between samples into state changes labelled 'sampled'.
 * States shorter than the interval are missed, and a socket's first and last states are only when it
 * appeared and disappeared (an absent socket is CLOSED), so reports must say so.
 */
import fs from 'node:fs';
import type { Endpoint, PortRange } from '../core/types.ts';
import { PathBuilder, sideKey } from './connectionPaths.ts';

import { monotonicNowUs } from './kernelTracepoint.ts';
import { stateFromKernelNumber } from './tcpStates.ts';
import type { ConnectionPath, StateChange, TcpState, TraceEvent } from './types.ts';

export interface SocketRow {
  family: 4 | 6;
  local: Endpoint;
  remote: Endpoint;
  state: TcpState;
  inode: number;
}

function hexToIPv4(hex: string): string {
  // /proc prints the address as a host-order (little-endian on x86 and arm64) 32-bit word.
  const bytes = Buffer.from(hex, 'hex');
  return [bytes[3], bytes[2], bytes[1], bytes[0]].join('.');
}

/** 16-bit groups, compressed like the kernel's %pI6c: the longest run of 2+ zero groups becomes '::'. */
function compressIPv6(groups: number[]): string {
  let bestStart = -1;
  let bestLength = 1;
  for (let start = 0; start < groups.length; ) {
    if (groups[start] !== 0) {
      start += 1;
      continue;
    }
    let end = start;
    while (end < groups.length && groups[end] === 0) end += 1;
    if (end - start > bestLength) {
      bestStart = start;
      bestLength = end - start;
    }
    start = end;
  }
  const hex = groups.map((group) => group.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`;
}

/** A tcp6 address: four host-order 32-bit words. v4-mapped addresses come back as plain IPv4. */
function hexToIPv6(hex: string): { family: 4 | 6; host: string } {
  const bytes = Buffer.alloc(16);
  for (let word = 0; word < 4; word++)
    bytes.writeUInt32BE(Buffer.from(hex.slice(word * 8, word * 8 + 8), 'hex').readUInt32LE(0), word * 4);
  const groups = Array.from({ length: 8 }, (_, i) => bytes.readUInt16BE(i * 2));
  if (groups.slice(0, 5).every((group) => group === 0) && groups[5] === 0xffff)
    return { family: 4, host: [...bytes.subarray(12)].join('.') };
  return { family: 6, host: compressIPv6(groups) };
}

function parseAddress(text: string, family: 4 | 6): { family: 4 | 6; endpoint: Endpoint } | undefined {
  const [hex, port] = text.split(':');
  if (!hex || !port) return undefined;
  if (family === 4) return { family, endpoint: { host: hexToIPv4(hex), port: Number.parseInt(port, 16) } };
  const address = hexToIPv6(hex);
  return { family: address.family, endpoint: { host: address.host, port: Number.parseInt(port, 16) } };
}

/** Parses the text of /proc/net/tcp (family 4) or /proc/net/tcp6 (family 6). */
export function parseProcNetTcp(text: string, family: 4 | 6): SocketRow[] {
  const rows: SocketRow[] = [];
  for (const line of text.split('\n')) {
    const columns = line.trim().split(/\s+/);
    // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode ...
    if (columns.length < 10 || !/^\d+:$/.test(columns[0] ?? '')) continue;
    const local = parseAddress(columns[1] ?? '', family);
    const remote = parseAddress(columns[2] ?? '', family);
    const state = stateFromKernelNumber(Number.parseInt(columns[3] ?? '', 16));
    if (!local || !remote || !state) continue;
    // A listener on a v4-mapped address still has an all-zero (v6) remote address.
    const rowFamily = local.family === 4 && remote.family === 4 ? 4 : family;
    rows.push({
      family: rowFamily,
      local: local.endpoint,
      remote: remote.endpoint,
      state,
      inode: Number(columns[9]),
    });
  }
  return rows;
}

export function rowInPortRange(row: SocketRow, range?: PortRange): boolean {
  if (!range) return true;
  const inRange = (port: number) => port >= range.first && port <= range.last;
  return inRange(row.local.port) || inRange(row.remote.port);
}

/**
 * The state changes between two samples: a new socket goes CLOSED -> its state, a changed one
 * old -> new, a vanished one old -> CLOSED. Updates `previous` to the current sample.
 */
export function diffSamples(
  previous: Map<string, SocketRow>,
  current: readonly SocketRow[],
  timestampUs: number,
): StateChange[] {
  const changes: StateChange[] = [];
  const seen = new Map<string, SocketRow>();
  for (const row of current) seen.set(sideKey(row), row);
  const change = (row: SocketRow, from: TcpState, to: TcpState): StateChange => ({
    type: 'state',
    source: 'sampled',
    timestampUs,
    family: row.family,
    local: row.local,
    remote: row.remote,
    from,
    to,
  });
  for (const [key, row] of seen) {
    const before = previous.get(key);
    if (!before) changes.push(change(row, 'CLOSED', row.state));
    else if (before.state !== row.state) changes.push(change(row, before.state, row.state));
  }
  for (const [key, row] of previous) if (!seen.has(key)) changes.push(change(row, row.state, 'CLOSED'));
  previous.clear();
  for (const [key, row] of seen) previous.set(key, row);
  return changes;
}

const DEFAULT_FILES: { path: string; family: 4 | 6 }[] = [
  { path: '/proc/net/tcp', family: 4 },
  { path: '/proc/net/tcp6', family: 6 },
];

/** This network namespace's TCP sockets now (files that cannot be read, like tcp6 without IPv6, are skipped). */
export function readSocketTable(files: { path: string; family: 4 | 6 }[] = DEFAULT_FILES): SocketRow[] {
  const rows: SocketRow[] = [];
  for (const file of files) {
    let text: string;
    try {
      text = fs.readFileSync(file.path, 'utf8');
    } catch {
      continue;
    }
    // A loop, not push(...rows): a busy host's table has more rows than a call takes arguments.
    for (const row of parseProcNetTcp(text, file.family)) rows.push(row);
  }
  return rows;
}

/** Is this connection side in TIME_WAIT in the socket table (what `ss -tan state time-wait` lists)? */
export function isInTimeWait(
  side: { local: Endpoint; remote: Endpoint },
  rows: readonly SocketRow[],
): boolean {
  return rows.some(
    (row) =>
      row.state === 'TIME_WAIT' &&
      row.local.host === side.local.host &&
      row.local.port === side.local.port &&
      row.remote.host === side.remote.host &&
      row.remote.port === side.remote.port,
  );
}

export interface SamplerOptions {
  portRange?: PortRange;
  hosts?: string[];
  onEvent?: (event: TraceEvent) => void;
  /** Default 10 ms. */
  intervalMs?: number;
  /** Keep the raw events (default true). */
  retainEvents?: boolean;
  /** Keep every path in `paths` (default true); see KernelTraceOptions.retainPaths. */
  retainPaths?: boolean;
  /** Where to read (default /proc/net/tcp and /proc/net/tcp6); tests point these at recorded text. */
  files?: { path: string; family: 4 | 6 }[];
}

export interface ProcNetTcpSampler {
  readonly events: TraceEvent[];
  readonly paths: ConnectionPath[];
  readonly lostEvents: number;
  readonly startedUs: number;
  readonly intervalMs: number;
  /** Takes a sample now and returns the changes it showed. */
  drain(): TraceEvent[];
  stop(): Promise<ConnectionPath[]>;
}

export function startProcNetTcpSampler(options: SamplerOptions = {}): ProcNetTcpSampler {
  const files = options.files ?? DEFAULT_FILES;
  const intervalMs = options.intervalMs ?? 10;
  const hosts = options.hosts?.length ? new Set(options.hosts) : undefined;
  const previous = new Map<string, SocketRow>();
  const events: TraceEvent[] = [];
  const startedUs = monotonicNowUs();
  const builder = options.retainPaths === false ? undefined : new PathBuilder(startedUs);
  const paths = builder?.paths ?? [];

  const sample = (record = true): TraceEvent[] => {
    const rows = readSocketTable(files).filter(
      (row) =>
        rowInPortRange(row, options.portRange) &&
        (!hosts || hosts.has(row.local.host) || hosts.has(row.remote.host)),
    );
    const changes = diffSamples(previous, rows, monotonicNowUs());
    if (!record) return [];
    for (const change of changes) {
      if (options.retainEvents !== false) events.push(change);
      builder?.add(change);
      options.onEvent?.(change);
    }
    return changes;
  };

  // The first sample is the baseline: sockets that already exist are not "opened" by it.
  sample(false);
  const timer = setInterval(() => sample(), intervalMs);
  return {
    events,
    paths,
    lostEvents: 0,
    startedUs,
    intervalMs,
    drain: () => sample(),
    async stop() {
      clearInterval(timer);
      sample();
      return paths;
    },
  };
}
