/**
 * The exact source of TCP state transitions: the kernel tracepoint sock:inet_sock_set_state, read
 * through tracefs from a private trace instance (instances/simopen-<pid>-<n>) so nothing else on the
 * machine is disturbed. The instance is filtered in the kernel on ports (and a few IPv4 addresses) and
 * removed on stop, on SIGINT/SIGTERM/SIGHUP, and at exit; instances left by a killed process are swept
 * on the next start.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { isIP } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { isAlive } from '../core/childProcess.ts';
import type { PortRange } from '../core/types.ts';
import { PathBuilder } from './connectionPaths.ts';
import { stateFromKernelName } from './tcpStates.ts';
import type { ConnectionPath, ResetReceived, StateChange, TraceEvent } from './types.ts';

export const TRACEFS = '/sys/kernel/tracing';
const STATE_EVENT = 'sock/inet_sock_set_state';
// Optional: lets a CLOSE after a received RST be told apart from a TIME_WAIT hand-off.
const RESET_EVENT = 'tcp/tcp_receive_reset';
const INSTANCE_PREFIX = 'simopen-';
/** A dead tracer's instance is swept by a later trace start once it is this old. */
const STALE_INSTANCE_MIN_AGE_MS = 60_000;

/** A line of trace_pipe: an event, a note that the ring buffer overflowed, or nothing of ours. */
export type TraceLine = TraceEvent | { type: 'lost'; count: number } | null;

/** "295.870054" (seconds on the trace clock) -> 295870054 µs, without a float round trip. */
function parseTimestampUs(seconds: string, fraction: string): number {
  return Number(seconds) * 1_000_000 + Number(fraction.padEnd(6, '0').slice(0, 6));
}

/** The name=value fields of an event line. */
interface Fields {
  get(name: string): string | undefined;
}

/**
 * Looks the fields up in the line itself: no split and no map for each of the many events a busy
 * trace parses (a Map satisfies the same interface).
 */
function parseFields(text: string): Fields {
  return {
    get(name) {
      const key = `${name}=`;
      let at = text.indexOf(key);
      // A whole field name: at the start or after white space (saddr= is not in saddrv6=...).
      while (at > 0 && text.charCodeAt(at - 1) > 32) at = text.indexOf(key, at + 1);
      if (at < 0) return undefined;
      const start = at + key.length;
      let end = start;
      while (end < text.length && text.charCodeAt(end) > 32) end += 1;
      return text.slice(start, end);
    },
  };
}

function familyOf(fields: Fields): 4 | 6 {
  const family = fields.get('family');
  if (family === 'AF_INET6') return 6;
  if (family === 'AF_INET') return 4;
  // Kernels whose tcp_receive_reset lacks the family field: a v4 socket shows v4-mapped v6 addresses.
  return fields.get('saddrv6')?.startsWith('::ffff:') ? 4 : 6;
}

const V4_MAPPED = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/;

/** Distinct addresses kept as independent strings; cleared when it grows past this. */
const MAX_INTERNED = 4096;
const interned = new Map<string, string>();

/**
 * An address as a string of its own. A field cut out of the trace text is a slice that keeps the
 * whole chunk read from trace_pipe (64 KiB) alive for as long as it is referenced: a key kept per
 * side (stress --trace) would keep the run's whole trace text in memory.
 */
function internHost(host: string): string {
  let own = interned.get(host);
  if (own === undefined) {
    if (interned.size >= MAX_INTERNED) interned.clear();
    own = Buffer.from(host, 'latin1').toString('latin1');
    interned.set(own, own);
  }
  return own;
}

/** The addresses and ports, and the family they really are (a dual-stack socket on v4-mapped addresses is v4). */
function addressing(fields: Fields) {
  let family = familyOf(fields);
  let localHost = fields.get(family === 4 ? 'saddr' : 'saddrv6') ?? '';
  let remoteHost = fields.get(family === 4 ? 'daddr' : 'daddrv6') ?? '';
  const localV4 = V4_MAPPED.exec(localHost)?.[1];
  const remoteV4 = V4_MAPPED.exec(remoteHost)?.[1] ?? (remoteHost === '::' ? '0.0.0.0' : undefined);
  if (family === 6 && localV4 && remoteV4) {
    family = 4;
    localHost = localV4;
    remoteHost = remoteV4;
  }
  return {
    family,
    local: { host: internHost(localHost), port: Number(fields.get('sport')) },
    remote: { host: internHost(remoteHost), port: Number(fields.get('dport')) },
  };
}

const LINE = /^\s*(.*?)-(\d+)\s+\[(\d+)\]\s+(?:\S+\s+)?(\d+)\.(\d+):\s+(\w+):\s+(.*)$/;
const LOST = /CPU:\d+ \[LOST (\d+) EVENTS\]/;

/**
 * Parses one line of trace_pipe (default output format) into a typed event. Lines of other events,
 * non-TCP protocols and headers give null.
 */
export function parseTraceLine(line: string): TraceLine {
  const lost = LOST.exec(line);
  if (lost) return { type: 'lost', count: Number(lost[1]) };
  const match = LINE.exec(line);
  if (!match) return null;
  const [, , , , seconds = '', fraction = '', name, rest = ''] = match;
  const fields = parseFields(rest);
  const timestampUs = parseTimestampUs(seconds, fraction);
  if (name === 'inet_sock_set_state') {
    if (fields.get('protocol') !== 'IPPROTO_TCP') return null;
    const from = stateFromKernelName(fields.get('oldstate') ?? '');
    const to = stateFromKernelName(fields.get('newstate') ?? '');
    if (!from || !to) return null;
    const event: StateChange = {
      type: 'state',
      source: 'kernel',
      timestampUs,
      ...addressing(fields),
      from,
      to,
    };
    return event;
  }
  if (name === 'tcp_receive_reset') {
    const event: ResetReceived = { type: 'reset', source: 'kernel', timestampUs, ...addressing(fields) };
    return event;
  }
  return null;
}

/**
 * An IPv4 address as the filter compares a __u8[4] field: one 32-bit number in host byte order
 * (127.0.0.1 is 0x0100007f on a little-endian machine).
 */
export function ipv4FilterValue(address: string): string {
  const bytes = Buffer.from(address.split('.').map(Number));
  const value = os.endianness() === 'LE' ? bytes.readUInt32LE(0) : bytes.readUInt32BE(0);
  return `0x${value.toString(16).padStart(8, '0')}`;
}

/** The instance's ring buffer per CPU, in KiB, unless asked otherwise (stress runs make many events). */
export const DEFAULT_BUFFER_KB = 4096;

/** More addresses than this are filtered in user space only (keeps the kernel filter short). */
const MAX_KERNEL_ADDRESSES = 32;

/**
 * The kernel-side filter: TCP (for the state event), either port in the range, and, when `hosts`
 * are a few IPv4 addresses, either address among them. undefined: no filter at all.
 */
export function eventFilter(
  options: { portRange?: PortRange; hosts?: string[] },
  withProtocol = true,
): string | undefined {
  const terms: string[] = [];
  if (withProtocol) terms.push('protocol == 6');
  const ports = options.portRange;
  if (ports)
    terms.push(
      `(sport >= ${ports.first} && sport <= ${ports.last} || dport >= ${ports.first} && dport <= ${ports.last})`,
    );
  const hosts = options.hosts ?? [];
  if (hosts.length > 0 && hosts.length <= MAX_KERNEL_ADDRESSES && hosts.every((host) => isIP(host) === 4)) {
    const values = hosts.map(ipv4FilterValue);
    terms.push(`(${values.map((value) => `saddr == ${value} || daddr == ${value}`).join(' || ')})`);
  }
  return terms.length ? terms.join(' && ') : undefined;
}

/** Microseconds on CLOCK_MONOTONIC, the clock the instance is set to ('mono'). */
export function monotonicNowUs(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

export interface TracefsProbe {
  ok: boolean;
  /** Why not (for the report of the sampling fallback), or where tracefs is. */
  reason: string;
}

/** Is a tracefs mounted at TRACEFS in our mount namespace? undefined when mountinfo cannot be read. */
export function tracefsMounted(mountinfo?: string): boolean | undefined {
  let text = mountinfo;
  if (text === undefined) {
    try {
      text = fs.readFileSync('/proc/self/mountinfo', 'utf8');
    } catch {
      return undefined;
    }
  }
  // "36 25 0:12 / /sys/kernel/tracing rw,relatime shared:17 - tracefs nodev rw"
  return text.split('\n').some((line) => {
    const [mount, fsType] = line.split(' - ');
    return mount?.split(' ')[4] === TRACEFS && fsType?.split(' ')[0] === 'tracefs';
  });
}

/** Root of a user namespace (unshare -r) is uid 0 without being root on the host. */
function inUserNamespace(): boolean {
  try {
    const [inside, outside, count] = fs.readFileSync('/proc/self/uid_map', 'utf8').trim().split(/\s+/);
    return !(inside === '0' && outside === '0' && count === '4294967295');
  } catch {
    return false;
  }
}

/**
 * Can we trace here? Needs root and tracefs with the inet_sock_set_state event; mounts tracefs if it
 * is not mounted (it then stays mounted: other tools on the machine may start to use it). Says
 * which of these failed: not root, not mounted (and mounting failed), mounted but not readable.
 */
export function probeTracefs(): TracefsProbe {
  if (process.getuid?.() !== 0) return { ok: false, reason: 'tracefs needs root (running as non-root)' };
  const notRoot = inUserNamespace() ? ': uid 0 in a user namespace (unshare -r) is not root on the host' : '';
  if (tracefsMounted() === false) {
    try {
      execFileSync('mount', ['-t', 'tracefs', 'nodev', TRACEFS], { stdio: ['ignore', 'ignore', 'pipe'] });
    } catch (error) {
      const stderr = ((error as { stderr?: Buffer }).stderr?.toString() ?? String(error))
        .trim()
        .split('\n')[0];
      return {
        ok: false,
        reason: `tracefs is not mounted at ${TRACEFS} and mounting it failed: ${stderr}${notRoot}`,
      };
    }
  }
  try {
    fs.accessSync(TRACEFS, fs.constants.R_OK | fs.constants.X_OK);
  } catch (error) {
    return {
      ok: false,
      reason: `tracefs is mounted at ${TRACEFS} but this process cannot read it (${(error as NodeJS.ErrnoException).code})${notRoot}`,
    };
  }
  if (!fs.existsSync(path.join(TRACEFS, 'instances')))
    return { ok: false, reason: `${TRACEFS} is not a tracefs with instances (is it mounted?)` };
  if (!fs.existsSync(path.join(TRACEFS, 'events', STATE_EVENT)))
    return { ok: false, reason: `this kernel has no ${STATE_EVENT} tracepoint` };
  try {
    fs.accessSync(path.join(TRACEFS, 'instances'), fs.constants.W_OK);
  } catch {
    return { ok: false, reason: `${TRACEFS}/instances is not writable${notRoot}` };
  }
  return { ok: true, reason: `tracefs at ${TRACEFS}` };
}

export interface StaleInstanceOptions {
  /** Only the instances of these processes. */
  owners?: number[];
  /**
   * Only instances at least this old. A tracer killed a moment ago may belong to a test of another
   * run that is about to check and sweep its own leftover: the automatic sweep leaves young ones.
   */
  minAgeMs?: number;
}

/** Removes instances named simopen-<pid>-<n> whose process is gone (killed with SIGKILL, say). */
export function removeStaleInstances(options: StaleInstanceOptions = {}): string[] {
  const removed: string[] = [];
  let names: string[] = [];
  try {
    names = fs.readdirSync(path.join(TRACEFS, 'instances'));
  } catch {
    return removed;
  }
  for (const name of names) {
    const match = /^simopen-(\d+)-\d+$/.exec(name);
    const owner = Number(match?.[1]);
    if (!match || isAlive(owner)) continue;
    if (options.owners && !options.owners.includes(owner)) continue;
    const dir = path.join(TRACEFS, 'instances', name);
    try {
      if (options.minAgeMs && Date.now() - fs.statSync(dir).mtimeMs < options.minAgeMs) continue;
      fs.rmdirSync(dir);
      removed.push(name);
    } catch {
      // In use after all (pid reused by a tracing process), or gone: leave it.
    }
  }
  return removed;
}

/** Does a trace instance of that name exist (for tests and reports)? */
export function instanceExists(name: string): boolean {
  return fs.existsSync(path.join(TRACEFS, 'instances', name));
}

export interface KernelTraceOptions {
  /** Kernel-side filter: either port in this range. Without it every TCP socket is traced. */
  portRange?: PortRange;
  /** Keep events whose local or remote address is one of these (up to 32 IPv4 ones also in the kernel). */
  hosts?: string[];
  /** Called for each event as it is read (within a poll interval of the transition). */
  onEvent?: (event: TraceEvent) => void;
  /** Per-CPU ring buffer of the instance in KiB (default DEFAULT_BUFFER_KB). */
  bufferSizeKb?: number;
  /** How often trace_pipe is drained (default 20 ms). Timestamps come from the kernel, not from this. */
  pollIntervalMs?: number;
  /** Keep the raw events in `events` (default true). */
  retainEvents?: boolean;
  /**
   * Keep every path in `paths` (default true). Without it no paths are built here: a caller that
   * streams (lib/trace/connectionStream.ts) builds its own from onEvent and keeps only open ones.
   */
  retainPaths?: boolean;
}

export interface KernelTrace {
  /** The instance directory name under instances/. */
  readonly instance: string;
  /** Events so far, in the order read (empty with retainEvents: false). */
  readonly events: TraceEvent[];
  /** Paths so far, one per connection side, built as the events arrive (empty with retainPaths: false). */
  readonly paths: ConnectionPath[];
  /** Events the kernel dropped because the ring buffer overflowed (0 means the record is complete). */
  readonly lostEvents: number;
  /** Monotonic µs when tracing started: the origin for offsets. */
  readonly startedUs: number;
  /** Reads what is pending now (so callers can wait for a transition without waiting for the timer). */
  drain(): TraceEvent[];
  /** Drains, removes the instance, and returns one path per connection side. */
  stop(): Promise<ConnectionPath[]>;
}

/**
 * One drain reads at most this much of trace_pipe (about 20,000 events) and then yields to the event
 * loop: a tracer that keeps up with a busy kernel must not read in one synchronous loop forever.
 */
const DRAIN_BYTES = 4 << 20;

const active = new Set<KernelTraceHandle>();
let instanceCounter = 0;

function writeControl(dir: string, file: string, value: string): void {
  fs.writeFileSync(path.join(dir, file), value);
}

class KernelTraceHandle implements KernelTrace {
  readonly events: TraceEvent[] = [];
  lostEvents = 0;
  readonly startedUs: number;
  private fd: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  private again: NodeJS.Immediate | undefined;
  private partial = '';
  private readonly buffer = Buffer.alloc(1 << 16);
  private readonly hosts: Set<string> | undefined;
  private removed = false;
  private readonly builder: PathBuilder | undefined;

  constructor(
    readonly instance: string,
    private readonly dir: string,
    private readonly options: KernelTraceOptions,
  ) {
    this.hosts = options.hosts?.length ? new Set(options.hosts) : undefined;
    this.startedUs = monotonicNowUs();
    this.builder = options.retainPaths === false ? undefined : new PathBuilder(this.startedUs);
  }

  get paths(): ConnectionPath[] {
    return this.builder?.paths ?? [];
  }

  open(): void {
    this.fd = fs.openSync(path.join(this.dir, 'trace_pipe'), fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    this.timer = setInterval(() => this.drain(), this.options.pollIntervalMs ?? 20);
  }

  drain(): TraceEvent[] {
    const { events, more } = this.readBatch();
    // More is waiting: read it on the next turn of the event loop, after timers and output had theirs.
    if (more && !this.again)
      this.again = setImmediate(() => {
        this.again = undefined;
        this.drain();
      });
    return events;
  }

  /** Reads and parses up to DRAIN_BYTES of trace_pipe; `more` when it stopped at that bound. */
  private readBatch(): { events: TraceEvent[]; more: boolean } {
    const fresh: TraceEvent[] = [];
    if (this.fd === undefined) return { events: fresh, more: false };
    for (let read = 0; read < DRAIN_BYTES; ) {
      let bytes: number;
      try {
        bytes = fs.readSync(this.fd, this.buffer, 0, this.buffer.length, null);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'EAGAIN') return { events: fresh, more: false };
        throw error;
      }
      if (bytes === 0) return { events: fresh, more: false };
      read += bytes;
      const lines = (this.partial + this.buffer.toString('utf8', 0, bytes)).split('\n');
      this.partial = lines.pop() ?? '';
      for (const line of lines) {
        const parsed = parseTraceLine(line);
        if (!parsed) continue;
        if (parsed.type === 'lost') {
          this.lostEvents += parsed.count;
          continue;
        }
        if (this.hosts && !this.hosts.has(parsed.local.host) && !this.hosts.has(parsed.remote.host)) continue;
        if (this.options.retainEvents !== false) this.events.push(parsed);
        this.builder?.add(parsed);
        fresh.push(parsed);
        this.options.onEvent?.(parsed);
      }
    }
    return { events: fresh, more: true };
  }

  async stop(): Promise<ConnectionPath[]> {
    try {
      while (this.readBatch().more) {}
    } finally {
      this.removeSync();
    }
    return this.paths;
  }

  /** Synchronous so that signal and exit handlers can run it. Safe to call twice. */
  removeSync(): void {
    if (this.removed) return;
    this.removed = true;
    active.delete(this);
    if (active.size === 0) uninstallHandlers();
    if (this.timer) clearInterval(this.timer);
    if (this.again) clearImmediate(this.again);
    if (this.fd !== undefined) {
      try {
        fs.closeSync(this.fd);
      } catch {}
      this.fd = undefined;
    }
    for (const event of [STATE_EVENT, RESET_EVENT]) {
      try {
        writeControl(this.dir, `events/${event}/enable`, '0');
      } catch {}
    }
    try {
      fs.rmdirSync(this.dir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT')
        process.stderr.write(`kernelTrace: could not remove ${this.dir}: ${(error as Error).message}\n`);
    }
  }
}

function removeAllSync(): void {
  for (const trace of [...active]) trace.removeSync();
}

function onSignal(signal: NodeJS.Signals): void {
  // If the script handles this signal itself it will stop the trace (or exit, which the exit hook
  // covers); otherwise clean up and die of the signal as we would have without this handler.
  if (process.listenerCount(signal) > 1) return;
  removeAllSync();
  process.kill(process.pid, signal);
}

const SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
let handlersInstalled = false;

function installHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  // First in line: a script's own `once` handler still counts in listenerCount while ours runs.
  for (const signal of SIGNALS) process.prependListener(signal, onSignal);
  process.on('exit', removeAllSync);
}

function uninstallHandlers(): void {
  if (!handlersInstalled) return;
  handlersInstalled = false;
  for (const signal of SIGNALS) process.off(signal, onSignal);
  process.off('exit', removeAllSync);
}

/**
 * Starts tracing TCP state transitions in a fresh private instance. Throws (with the reason) when
 * tracefs cannot be used; callers that can live with less fall back to lib/trace/socketTableSampler.ts.
 */
export function startKernelTrace(options: KernelTraceOptions = {}): KernelTrace {
  const probe = probeTracefs();
  if (!probe.ok) throw new Error(`kernel trace unavailable: ${probe.reason}`);
  removeStaleInstances({ minAgeMs: STALE_INSTANCE_MIN_AGE_MS });
  instanceCounter += 1;
  const instance = `${INSTANCE_PREFIX}${process.pid}-${instanceCounter}`;
  const dir = path.join(TRACEFS, 'instances', instance);
  fs.mkdirSync(dir);
  const trace = new KernelTraceHandle(instance, dir, options);
  active.add(trace);
  installHandlers();
  try {
    // The monotonic clock lets callers relate kernel timestamps to process.hrtime().
    writeControl(dir, 'trace_clock', 'mono');
    writeControl(dir, 'buffer_size_kb', String(options.bufferSizeKb ?? DEFAULT_BUFFER_KB));
    writeControl(dir, `events/${STATE_EVENT}/filter`, eventFilter(options) ?? '0');
    writeControl(dir, `events/${STATE_EVENT}/enable`, '1');
    if (fs.existsSync(path.join(dir, 'events', RESET_EVENT))) {
      // Writing '0' clears a filter.
      writeControl(dir, `events/${RESET_EVENT}/filter`, eventFilter(options, false) ?? '0');
      writeControl(dir, `events/${RESET_EVENT}/enable`, '1');
    }
    trace.open();
  } catch (error) {
    trace.removeSync();
    throw error;
  }
  return trace;
}
