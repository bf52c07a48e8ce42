/**
 * One pair in sandbox mode: both sides connect() to each other from one thread. On lo (--open
 * one-sided) the RST answering A's early SYN is dropped, so A waits in SYN_SENT and B's SYN meets it:
 * the simultaneous open completes on the first attempt. Over the held link (--open crossed, skew) the
 * pair belongs to a wave (lib/stress/heldWave.ts) that decides when each side connects and when the
 * SYNs go; with --early-syn rst a refused side connects again. Then each side sends its payload
 * pattern, checks every byte it receives, stays open with keepalives for --hold, and the pair closes
 * the requested way.
 *
 * Built for many pairs in flight per thread: no per-pair closures (the handlers are shared and find
 * their pair through the socket), and one read buffer for every socket of the thread.
 */
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { chunkMatches, PATTERN_PERIOD, type Patterns, patternOffset } from '../core/payloadPattern.ts';
import { RawSocket, type RawSocketEvents } from '../core/rawTcp.ts';
import { pairEndpoints } from './planPairs.ts';
import {
  type AddressPlan,
  type CloseMode,
  type CloseOutcome,
  CONTROL,
  type Outcome,
  PAIR_ERRORS,
  type PairEndpoints,
  type SocketKind,
} from './types.ts';

export interface PairConfig {
  payload: number;
  close: CloseMode;
  patterns: Patterns;
  sockets: SocketKind;
  /** The held link's wave of the pair's batch; undefined on lo. */
  wave: WaveGate | undefined;
  /** --early-syn rst over the held link: a refused connect is tried again, through the wave. */
  retryRefused: boolean;
  /** --hold: where this thread's held pairs wait for their keepalives; undefined without a hold. */
  hold: HoldSchedule | undefined;
  /** The run's shared counters (CONTROL.open and peakOpen, kept with --hold). */
  control: Int32Array;
  /** The run's address plan: a pair's endpoints are computed from it when needed, not kept. */
  plan: AddressPlan;
}

/** A wave of pairs on the held link (lib/stress/heldWave.ts): it says when a side may connect. */
export interface WaveGate {
  /** Connect this side of the pair when the link allows (now or at its next delivery). */
  connect(pair: SandboxPair, side: 0 | 1): void;
  /** The pair is open (both sides connected), or over before it got there. */
  opened(): void;
}

/** --hold: the thread's held pairs in keepalive order (lib/stress/holdSchedule.ts). */
export interface HoldSchedule {
  readonly holdMs: number;
  readonly keepaliveMs: number;
  add(pair: SandboxPair): void;
}

/** Bytes of one keepalive, each way. */
export const KEEPALIVE_BYTES = 16;

/** What the pair needs from a socket; net.Socket and RawSocket both have it. */
interface PairSide {
  write(data: Uint8Array): unknown;
  end(): unknown;
  resetAndDestroy(): unknown;
  destroy(): unknown;
}

const kPair = Symbol('pair');
const kSide = Symbol('side');
type PairSocket = net.Socket & { [kPair]: SandboxPair; [kSide]: 0 | 1 };

/** One buffer for all reads of this thread: the data is checked synchronously and dropped. */
const readBuffer = Buffer.allocUnsafe(64 * 1024);

/** Sides that ended without a socket to close (never connected, or between two tries): closed on a microtask. */
const pendingCloses: SandboxPair[] = [];
const pendingSides: (0 | 1)[] = [];
let closesQueued = false;

function flushPendingCloses(): void {
  closesQueued = false;
  for (let index = 0; index < pendingCloses.length; index += 1)
    (pendingCloses[index] as SandboxPair).sideClosed(pendingSides[index] as 0 | 1);
  pendingCloses.length = 0;
  pendingSides.length = 0;
}

/**
 * Per-pair state as bits of one number: a held pair lives for the whole hold, thousands per thread,
 * so the pair is one object with scalar fields (no per-side arrays). Side B's bit is side A's << 1.
 */
const EOF_A = 1;
const WRITTEN_A = 1 << 2;
const CLOSED_A = 1 << 4;
const CONNECTED_A = 1 << 6;
const CLOSING = 1 << 8;
const SAW_RESET = 1 << 9;
const SETTLED = 1 << 10;
/** Told the wave that this pair is open or over. */
const REPORTED_OPEN = 1 << 11;
/** --hold: counted in CONTROL.open. */
const COUNTED_OPEN = 1 << 12;
const HOLD_DONE = 1 << 13;
const BOTH_CONNECTED = CONNECTED_A | (CONNECTED_A << 1);
const BOTH_CLOSED = CLOSED_A | (CLOSED_A << 1);

export class SandboxPair {
  outcome: Outcome = 'established';
  error: string | undefined = undefined;
  bytesVerified = 0;
  closeOutcome: CloseOutcome | undefined = undefined;
  startedAt = 0;
  finishedAt = 0;
  /** Connects refused and tried again (--early-syn rst). */
  retries = 0;
  /** --hold: keepalives checked on arrival (both sides counted). */
  keepalivesVerified = 0;

  private attemptsA = 0;
  private attemptsB = 0;
  /** Per side, from the pair's start to its connect (-1: never). */
  private establishA = -1;
  private establishB = -1;
  private socketA: PairSide | undefined = undefined;
  private socketB: PairSide | undefined = undefined;
  private receivedA = 0;
  private receivedB = 0;
  private flags: number;
  /** --hold: when the hold began (0: not yet); intervals of it scheduled; keepalive rounds sent (by each side). */
  private holdStartedAt = 0;
  private ticks = 0;
  private rounds = 0;

  constructor(
    readonly id: number,
    private readonly config: PairConfig,
    private readonly onDone: (pair: SandboxPair) => void,
  ) {
    // Nothing to write: each side's payload counts as out.
    this.flags =
      (config.payload === 0 ? WRITTEN_A | (WRITTEN_A << 1) : 0) | (config.hold === undefined ? HOLD_DONE : 0);
  }

  /** The pair's addresses, from the plan (not kept: a held pair is kept for long). */
  get endpoints(): PairEndpoints {
    return pairEndpoints(this.config.plan, this.id);
  }

  get attempts(): [number, number] {
    return [this.attemptsA, this.attemptsB];
  }

  get establishUs(): [number, number] {
    return [this.establishA, this.establishB];
  }

  /** --hold: when the next keepalive (or the end of the hold) is due, on performance.now()'s clock. */
  get nextKeepaliveAt(): number {
    const hold = this.config.hold;
    if (!hold) return 0;
    // Counted in intervals from the start, not summed (sums of float milliseconds drift).
    return this.holdStartedAt + Math.min(this.ticks * hold.keepaliveMs, hold.holdMs);
  }

  /** Starts both connects: A first, so on lo its SYN is the early one that goes unanswered. */
  start(): void {
    this.startedAt = performance.now();
    const endpoints = this.endpoints;
    this.connectSide(0, endpoints);
    this.connectSide(1, endpoints);
  }

  /** Starts one side (--open skew: A now, B later); the pair's clock starts with its first side. */
  startSide(side: 0 | 1): void {
    if (this.startedAt === 0) this.startedAt = performance.now();
    this.connectSide(side);
  }

  /** The pair failed or was cancelled: nothing more will be started for it. */
  get over(): boolean {
    return (this.flags & SETTLED) !== 0 || this.outcome !== 'established';
  }

  /** Ends the pair now with this failure code (a timeout, say); no-op once it is over. */
  fail(code: string): void {
    if (this.over) return;
    this.outcome = 'failed';
    this.error = code;
    this.destroySockets();
  }

  cancel(): void {
    if (this.over) return;
    this.outcome = 'cancelled';
    this.error = PAIR_ERRORS.cancelled;
    this.destroySockets();
  }

  private socketOf(side: 0 | 1): PairSide | undefined {
    return side === 0 ? this.socketA : this.socketB;
  }

  private setSocket(side: 0 | 1, socket: PairSide | undefined): void {
    if (side === 0) this.socketA = socket;
    else this.socketB = socket;
  }

  private receivedOn(side: 0 | 1): number {
    return side === 0 ? this.receivedA : this.receivedB;
  }

  private has(flag: number, side: 0 | 1 = 0): boolean {
    return (this.flags & (flag << side)) !== 0;
  }

  /** Connects one side (again, after a refused try); no-op once the pair is over. */
  connectSide(side: 0 | 1, endpoints: PairEndpoints = this.endpoints): void {
    if (this.over || this.has(CLOSED_A, side)) return;
    const { a, b } = endpoints;
    const local = side === 0 ? a : b;
    const remote = side === 0 ? b : a;
    if (side === 0) this.attemptsA += 1;
    else this.attemptsB += 1;
    if (this.config.sockets === 'handle') {
      const raw = new RawSocket(rawEvents, this);
      this.setSocket(side, raw);
      raw.connect(local, remote);
      return;
    }
    // onread (one shared buffer, no 'data' events) is honoured by the constructor only; @types/node omits it there.
    const socket = new net.Socket({ onread: socketOnRead } as net.SocketConstructorOpts) as PairSocket;
    socket[kPair] = this;
    socket[kSide] = side;
    socket.on('connect', onConnect);
    socket.on('end', onEnd);
    socket.on('error', onError);
    socket.on('close', onClose);
    this.setSocket(side, socket);
    socket.connect({
      host: remote.host,
      port: remote.port,
      localAddress: local.host,
      localPort: local.port,
    });
  }

  private destroySockets(): void {
    for (const side of SIDES) {
      const socket = this.socketOf(side);
      if (socket) socket.destroy();
      else if (!this.has(CLOSED_A, side)) {
        // Nothing to close on this side: it ends now, but not inside our caller's loop.
        pendingCloses.push(this);
        pendingSides.push(side);
        if (!closesQueued) {
          closesQueued = true;
          queueMicrotask(flushPendingCloses);
        }
      }
    }
  }

  /** Which side a socket is, or -1 for a socket this pair replaced (a refused try). */
  sideOf(socket: unknown): -1 | 0 | 1 {
    return socket === this.socketA ? 0 : socket === this.socketB ? 1 : -1;
  }

  handleConnect(side: 0 | 1): void {
    const establishUs = (performance.now() - this.startedAt) * 1000;
    if (side === 0) this.establishA = establishUs;
    else this.establishB = establishUs;
    this.flags |= CONNECTED_A << side;
    const socket = this.socketOf(side);
    if (this.config.payload > 0 && socket) {
      const pattern = side === 0 ? this.config.patterns.aToB : this.config.patterns.bToA;
      const offset = patternOffset(this.id);
      const data = pattern.subarray(offset, offset + this.config.payload);
      if (socket instanceof RawSocket) {
        if (socket.write(data)) this.flags |= WRITTEN_A << side;
      } else (socket as net.Socket).write(data, () => this.handleWritten(side));
    }
    if ((this.flags & BOTH_CONNECTED) === BOTH_CONNECTED) {
      this.openNow();
      if (this.config.hold) this.countOpen();
    }
    this.maybeClose();
  }

  handleWritten(side: 0 | 1): void {
    this.flags |= WRITTEN_A << side;
    this.maybeClose();
  }

  handleData(side: 0 | 1, buffer: Buffer, length: number): void {
    if (this.outcome !== 'established') return;
    const received = this.receivedOn(side);
    const payload = this.config.payload;
    // Side A receives what B sends, and the other way round.
    const pattern = side === 0 ? this.config.patterns.bToA : this.config.patterns.aToB;
    const offset = patternOffset(this.id);
    if (received >= payload && this.config.hold) {
      // Keepalives continue the pattern; the buffer holds one period and a read's worth beyond it.
      const expected = payload + this.rounds * KEEPALIVE_BYTES;
      if (
        received + length > expected ||
        !chunkMatches(pattern, 0, (offset + received) % PATTERN_PERIOD, buffer, length)
      ) {
        this.fail(PAIR_ERRORS.keepalive);
        return;
      }
    } else if (received + length > payload || !chunkMatches(pattern, offset, received, buffer, length)) {
      this.fail(PAIR_ERRORS.payload);
      return;
    } else {
      this.bytesVerified += length;
    }
    if (side === 0) this.receivedA = received + length;
    else this.receivedB = received + length;
    this.maybeClose();
  }

  handleEnd(side: 0 | 1): void {
    // EOF before everything arrived: the peer closed too early.
    const received = this.receivedOn(side);
    if (received !== this.config.payload + this.rounds * KEEPALIVE_BYTES)
      this.fail(received < this.config.payload ? PAIR_ERRORS.payload : PAIR_ERRORS.keepalive);
    this.flags |= EOF_A << side;
  }

  handleError(side: 0 | 1, code: string): void {
    if (this.has(CLOSING) && this.config.close === 'reset' && side === 1 && code === 'ECONNRESET') {
      this.flags |= SAW_RESET;
      return;
    }
    const wave = this.config.wave;
    if (
      code === 'ECONNREFUSED' &&
      this.config.retryRefused &&
      wave &&
      !this.has(CONNECTED_A, side) &&
      !this.over
    ) {
      // A plain host answered the early SYN with RST: this side connects again, as the classic program does.
      this.retries += 1;
      this.setSocket(side, undefined);
      wave.connect(this, side);
      return;
    }
    this.fail(code);
  }

  handleClose(side: 0 | 1): void {
    this.setSocket(side, undefined);
    this.sideClosed(side);
  }

  /** A side is over (its socket closed, or it had none); the pair ends with its second side. */
  sideClosed(side: 0 | 1): void {
    if (this.has(CLOSED_A, side)) return;
    this.flags |= CLOSED_A << side;
    if ((this.flags & BOTH_CLOSED) !== BOTH_CLOSED) return;
    if (this.outcome === 'established') {
      const connected = (this.flags & BOTH_CONNECTED) === BOTH_CONNECTED;
      const closedAsAsked =
        this.config.close === 'reset'
          ? this.has(SAW_RESET)
          : this.config.close === 'graceful'
            ? this.has(EOF_A, 1)
            : this.has(EOF_A, 0) && this.has(EOF_A, 1);
      if (connected && closedAsAsked) {
        this.closeOutcome = this.config.close === 'reset' ? 'rst' : 'fin';
      } else {
        this.outcome = 'failed';
        this.error = connected ? PAIR_ERRORS.close : 'ECONNABORTED';
      }
    }
    this.flags |= SETTLED;
    this.finishedAt = performance.now();
    this.openNow();
    if (this.has(COUNTED_OPEN)) Atomics.sub(this.config.control, CONTROL.open, 1);
    this.onDone(this);
  }

  /** Tells the wave, once, that this pair no longer waits for the link. */
  private openNow(): void {
    if (this.has(REPORTED_OPEN)) return;
    this.flags |= REPORTED_OPEN;
    this.config.wave?.opened();
  }

  /** --hold: one more pair open now; the peak is kept exactly (compare-and-swap). */
  private countOpen(): void {
    const control = this.config.control;
    this.flags |= COUNTED_OPEN;
    const open = Atomics.add(control, CONTROL.open, 1) + 1;
    for (let peak = Atomics.load(control, CONTROL.peakOpen); open > peak; ) {
      const seen = Atomics.compareExchange(control, CONTROL.peakOpen, peak, open);
      if (seen === peak) break;
      peak = seen;
    }
  }

  /**
   * --hold, called by the schedule when the next keepalive is due: every round sent so far must have
   * arrived on both sides (each had one interval), then one more round goes, unless the hold ends
   * within an interval. At the end the pair closes. True while the pair stays in the schedule.
   */
  keepalive(): boolean {
    const hold = this.config.hold;
    if (!hold || this.over || this.has(HOLD_DONE)) return false;
    const expected = this.config.payload + this.rounds * KEEPALIVE_BYTES;
    if (this.receivedA !== expected || this.receivedB !== expected) {
      this.fail(PAIR_ERRORS.keepalive);
      return false;
    }
    this.keepalivesVerified = 2 * this.rounds;
    if (this.ticks * hold.keepaliveMs >= hold.holdMs) {
      this.flags |= HOLD_DONE;
      this.maybeClose();
      return false;
    }
    if (this.rounds < Math.floor(hold.holdMs / hold.keepaliveMs)) this.sendKeepalive();
    this.ticks += 1;
    return true;
  }

  private beginHold(hold: HoldSchedule): void {
    this.holdStartedAt = performance.now();
    if (hold.keepaliveMs <= hold.holdMs) this.sendKeepalive();
    this.ticks = 1;
    hold.add(this);
  }

  /** Both sides send the next KEEPALIVE_BYTES of their stream. */
  private sendKeepalive(): void {
    const position = this.config.payload + this.rounds * KEEPALIVE_BYTES;
    this.rounds += 1;
    const start = (patternOffset(this.id) + position) % PATTERN_PERIOD;
    for (const side of SIDES) {
      const socket = this.socketOf(side);
      if (!socket) continue;
      const pattern = side === 0 ? this.config.patterns.aToB : this.config.patterns.bToA;
      socket.write(pattern.subarray(start, start + KEEPALIVE_BYTES));
    }
  }

  /** Closes once both sides are connected and what must have arrived has arrived (and the hold is over). */
  private maybeClose(): void {
    if ((this.flags & (CLOSING | BOTH_CONNECTED)) !== BOTH_CONNECTED || this.outcome !== 'established')
      return;
    const a = this.socketA;
    const b = this.socketB;
    if (!a || !b) return;
    const payload = this.config.payload;
    if (!this.has(HOLD_DONE)) {
      // Held: once both payloads are in and out, the pair waits in the schedule.
      const hold = this.config.hold;
      if (!hold || this.holdStartedAt > 0) return;
      if (
        this.receivedA < payload ||
        this.receivedB < payload ||
        !this.has(WRITTEN_A, 0) ||
        !this.has(WRITTEN_A, 1)
      )
        return;
      this.beginHold(hold);
      return;
    }
    const expected = payload + this.rounds * KEEPALIVE_BYTES;
    switch (this.config.close) {
      case 'graceful':
        // A closes (close(2): FIN, nothing is unread) once its payload is out and B's is in; B reads
        // A's payload and the EOF, then closes too. A's kernel socket takes B's FIN into TIME_WAIT.
        if (this.receivedA < expected || !this.has(WRITTEN_A, 0)) return;
        this.flags |= CLOSING;
        a.destroy();
        break;
      case 'simultaneous':
        // Both shut down back to back. That alone does not make the FINs cross: on loopback the first
        // FIN reaches the peer inside the first shutdown(), so the peer would close passively. The
        // sandbox's nft rules (lib/stress/finCrossing.ts crossFinsRuleset) hold both FINs and let them go together.
        if (this.receivedA < expected || this.receivedB < expected) return;
        this.flags |= CLOSING;
        a.end();
        b.end();
        break;
      case 'reset':
        if (this.receivedA < expected || this.receivedB < expected) return;
        this.flags |= CLOSING;
        a.resetAndDestroy();
        break;
    }
  }
}

const SIDES = [0, 1] as const;

const socketOnRead = {
  buffer: readBuffer,
  callback: onRead as (length: number, buffer: Uint8Array) => boolean,
};

/** net.Socket events: a socket the pair replaced (a refused try) is no longer heard. */
function current(socket: PairSocket): boolean {
  return socket[kPair].sideOf(socket) === socket[kSide];
}

function onConnect(this: PairSocket): void {
  if (current(this)) this[kPair].handleConnect(this[kSide]);
}

function onRead(this: PairSocket, length: number): boolean {
  if (current(this)) this[kPair].handleData(this[kSide], readBuffer, length);
  return true;
}

function onEnd(this: PairSocket): void {
  if (current(this)) this[kPair].handleEnd(this[kSide]);
}

function onError(this: PairSocket, error: NodeJS.ErrnoException): void {
  if (current(this)) this[kPair].handleError(this[kSide], error.code ?? 'EUNKNOWN');
}

function onClose(this: PairSocket): void {
  if (current(this)) this[kPair].handleClose(this[kSide]);
}

/** Raw sockets know their pair (owner); the pair knows which side they are (-1: replaced, not heard). */
const rawEvents: RawSocketEvents = {
  onConnect(socket) {
    const pair = socket.owner as SandboxPair;
    const side = pair.sideOf(socket);
    if (side >= 0) pair.handleConnect(side as 0 | 1);
  },
  onData(socket, buffer, length) {
    const pair = socket.owner as SandboxPair;
    const side = pair.sideOf(socket);
    if (side >= 0) pair.handleData(side as 0 | 1, buffer, length);
  },
  onEnd(socket) {
    const pair = socket.owner as SandboxPair;
    const side = pair.sideOf(socket);
    if (side >= 0) pair.handleEnd(side as 0 | 1);
  },
  onWritten(socket) {
    const pair = socket.owner as SandboxPair;
    const side = pair.sideOf(socket);
    if (side >= 0) pair.handleWritten(side as 0 | 1);
  },
  onError(socket, code) {
    const pair = socket.owner as SandboxPair;
    const side = pair.sideOf(socket);
    if (side >= 0) pair.handleError(side as 0 | 1, code);
  },
  onClose(socket) {
    const pair = socket.owner as SandboxPair;
    const side = pair.sideOf(socket);
    if (side >= 0) pair.handleClose(side as 0 | 1);
  },
};
