/**
 * One side of a pair whose other side runs in another process, usually on another agent behind
 * another NAT: bind the side's local endpoint, connect() to the peer's public endpoint, and retry at
 * once after a refusal (a router that answers an early SYN with RST) until the SYNs meet or the pair's
 * timeout. Then, as in race mode (lib/stress/raceSide.ts): A sends its payload; B checks it and sends
 * its own; A checks that and closes the asked way (B only answers, so nothing is in flight when A
 * resets). Each side checks every byte it receives.
 *
 * With --hold, a side whose payloads are done stays open for the hold: it sends KEEPALIVE_BYTES more
 * of its stream at the hold's start and every keepalive interval while the hold lasts (the same number
 * of rounds on both sides, from the same config), and checks every byte of the peer's as it comes. A
 * side whose peer lags more than one interval behind its own rounds fails with EKEEPALIVE. When A's
 * hold is over and all of B's rounds are in, A closes the asked way; B checks, at A's FIN, that all of
 * A's rounds came. The two sides run in two processes: each keeps its own clock, from its hold's start.
 *
 * Built for many sides in flight per thread, like lib/stress/sandboxPair.ts: the handlers are shared
 * and find their side through the socket, and bare TCP handles (lib/core/rawTcp.ts) are the default.
 */
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { chunkMatches, PATTERN_PERIOD, type Patterns, patternOffset } from '../core/payloadPattern.ts';
import { RawSocket, type RawSocketEvents } from '../core/rawTcp.ts';
import type { Endpoint } from '../core/types.ts';
import { RETRYABLE_CODES } from '../peer/dialSimultaneous.ts';
import type { HoldSchedule } from '../stress/holdSchedule.ts';
import { KEEPALIVE_BYTES } from '../stress/sandboxPair.ts';
import {
  type CloseMode,
  type CloseOutcome,
  type Outcome,
  PAIR_ERRORS,
  type SocketKind,
} from '../stress/types.ts';

export interface SideConfig {
  payload: number;
  close: CloseMode;
  patterns: Patterns;
  sockets: SocketKind;
  hold: SideHold | undefined;
}

/** --hold, for every side of a thread. */
export interface SideHold {
  holdMs: number;
  keepaliveMs: number;
  /** Keepalives each side sends: one at the hold's start, then one every interval within the hold. */
  rounds: number;
  schedule: HoldSchedule;
  /** AGENT_CONTROL of the agent: A sides held now, keepalives checked. */
  counters: Int32Array;
  heldSlot: number;
  keepalivesSlot: number;
}

/** Keepalive rounds of a hold: one at its start and one every interval that starts within it. */
export function holdRounds(holdMs: number, keepaliveMs: number): number {
  return keepaliveMs <= holdMs ? Math.floor(holdMs / keepaliveMs) : 0;
}

/** Where a side is in its hold. */
const HOLD = { none: 0, holding: 1, over: 2 } as const;

/** What the side needs from a socket; net.Socket and RawSocket both have it. */
interface SideSocket {
  write(data: Uint8Array): unknown;
  end(): unknown;
  resetAndDestroy(): unknown;
  destroy(): unknown;
}

const kSide = Symbol('side');
type NetSideSocket = net.Socket & { [kSide]: AgentSide };

/** One buffer for the reads of every net.Socket of this thread: the data is checked synchronously and dropped. */
const readBuffer = Buffer.allocUnsafe(64 * 1024);

export class AgentSide {
  outcome: Outcome = 'established';
  error: string | undefined;
  attempts = 0;
  /** From this side's start to its 'connect' (-1: never). */
  establishUs = -1;
  bytesVerified = 0;
  closeOutcome: CloseOutcome | undefined;
  /** performance.now() of the start and the end (0: not yet). */
  startedAt = 0;
  finishedAt = 0;
  /** --hold: when the next keepalive, or the end of the hold, is due (HoldSchedule). */
  nextKeepaliveAt = 0;

  private socket: SideSocket | undefined;
  private received = 0;
  private sawEof = false;
  private sawReset = false;
  private connected = false;
  private closing = false;
  private retrying = false;
  private settled = false;
  private readonly offset: number;
  private readonly isA: boolean;
  /** --hold: HOLD state, when it started, keepalive rounds sent, counted in heldA. */
  private holdState: number = HOLD.none;
  private holdStartedAt = 0;
  private roundsSent = 0;
  private countedHeld = false;
  /** The bytes the peer sends in all: its payload, and its keepalives with --hold. */
  private readonly streamLength: number;

  constructor(
    readonly id: number,
    role: 'a' | 'b',
    readonly local: Endpoint,
    readonly remote: Endpoint,
    private readonly config: SideConfig,
    private readonly onDone: (side: AgentSide) => void,
  ) {
    this.isA = role === 'a';
    this.offset = patternOffset(id);
    this.streamLength = config.payload + (config.hold ? config.hold.rounds * KEEPALIVE_BYTES : 0);
  }

  start(): void {
    this.startedAt = performance.now();
    this.connect();
  }

  /** Ends the side now with this failure code (a timeout, say); no-op once it is over. */
  fail(code: string): void {
    if (this.settled || this.outcome !== 'established') return;
    this.outcome = 'failed';
    this.error = code;
    this.stop();
  }

  cancel(): void {
    if (this.settled || this.outcome !== 'established') return;
    this.outcome = 'cancelled';
    this.error = PAIR_ERRORS.cancelled;
    this.stop();
  }

  private stop(): void {
    this.retrying = false;
    if (this.socket) this.socket.destroy();
    else this.settle();
  }

  private connect(): void {
    this.attempts += 1;
    if (this.config.sockets === 'handle') {
      const raw = new RawSocket(rawEvents, this);
      this.socket = raw;
      raw.connect(this.local, this.remote);
      return;
    }
    // onread (one shared buffer, no 'data' events) is honoured by the constructor only; @types/node omits it there.
    const socket = new net.Socket({ onread: socketOnRead } as net.SocketConstructorOpts) as NetSideSocket;
    socket[kSide] = this;
    socket.on('connect', onConnect);
    socket.on('end', onEnd);
    socket.on('error', onError);
    socket.on('close', onClose);
    this.socket = socket;
    socket.connect({
      host: this.remote.host,
      port: this.remote.port,
      localAddress: this.local.host,
      localPort: this.local.port,
    });
  }

  handleConnect(): void {
    this.connected = true;
    this.establishUs = (performance.now() - this.startedAt) * 1000;
    if (this.isA) this.send();
    this.advance();
  }

  private send(): void {
    const socket = this.socket;
    if (this.config.payload === 0 || !socket) return;
    const pattern = this.isA ? this.config.patterns.aToB : this.config.patterns.bToA;
    const data = pattern.subarray(this.offset, this.offset + this.config.payload);
    socket.write(data);
  }

  handleData(buffer: Buffer, length: number): void {
    if (this.outcome !== 'established') return;
    const payload = this.config.payload;
    if (this.received + length > this.streamLength) {
      this.fail(
        this.received + length > payload && this.config.hold ? PAIR_ERRORS.keepalive : PAIR_ERRORS.payload,
      );
      return;
    }
    // A receives what B sends, and the other way round.
    const pattern = this.isA ? this.config.patterns.bToA : this.config.patterns.aToB;
    // The payload part of the read, then (--hold) the keepalives that continue the stream: a read can
    // hold both, as B sends its first keepalive right after its payload.
    const inPayload = Math.max(0, Math.min(length, payload - this.received));
    if (inPayload > 0 && !chunkMatches(pattern, this.offset, this.received, buffer, inPayload)) {
      this.fail(PAIR_ERRORS.payload);
      return;
    }
    for (let index = inPayload; index < length; index += 1)
      if (buffer[index] !== pattern[(this.offset + this.received + index) % PATTERN_PERIOD]) {
        this.fail(PAIR_ERRORS.keepalive);
        return;
      }
    this.received += length;
    this.bytesVerified += inPayload;
    if (!this.isA && inPayload > 0 && this.received >= payload) this.send();
    this.advance();
  }

  handleEnd(): void {
    // EOF before the whole stream arrived: the peer closed too early.
    if (this.received !== this.streamLength)
      this.fail(this.received < this.config.payload ? PAIR_ERRORS.payload : PAIR_ERRORS.keepalive);
    else if (this.config.hold && !this.isA) this.countKeepalives();
    this.sawEof = true;
  }

  handleError(code: string): void {
    if (this.outcome !== 'established') return;
    if (!this.connected && RETRYABLE_CODES.has(code)) {
      // Refused (the peer's router answered our early SYN) or the like: again once this socket closed.
      this.retrying = true;
      return;
    }
    if (this.closing && !this.isA && this.config.close === 'reset' && code === 'ECONNRESET') {
      this.sawReset = true;
      return;
    }
    this.fail(code);
  }

  /** The next step once everything this side waits for has arrived. */
  private advance(): void {
    const socket = this.socket;
    if (this.closing || !this.connected || !socket || this.received < this.config.payload) return;
    const hold = this.config.hold;
    if (hold) {
      if (this.holdState === HOLD.none) {
        this.beginHold(hold);
        return;
      }
      // A closes once its hold is over and every keepalive of B's is in; B waits for A's FIN.
      if (this.holdState === HOLD.holding || this.received < this.streamLength) return;
      if (this.isA) this.countKeepalives();
    }
    this.closing = true;
    if (!this.isA) {
      // B has A's payload (and sent its own): it ends first only when asked for a simultaneous close
      // (best effort: the FINs cross only if the two ends happen to send them together).
      if (this.config.close === 'simultaneous') socket.end();
      return;
    }
    if (this.config.close === 'reset') socket.resetAndDestroy();
    else socket.end();
  }

  handleClose(): void {
    this.socket = undefined;
    if (this.retrying && this.outcome === 'established') {
      this.retrying = false;
      this.connect();
      return;
    }
    if (this.outcome === 'established') {
      const asked = this.config.close === 'reset' ? (this.isA ? this.closing : this.sawReset) : this.sawEof;
      if (this.connected && asked) this.closeOutcome = this.config.close === 'reset' ? 'rst' : 'fin';
      else {
        this.outcome = 'failed';
        this.error = this.connected ? PAIR_ERRORS.close : 'ECONNABORTED';
      }
    }
    this.settle();
  }

  private beginHold(hold: SideHold): void {
    this.holdState = HOLD.holding;
    this.holdStartedAt = performance.now();
    if (this.isA) {
      this.countedHeld = true;
      Atomics.add(hold.counters, hold.heldSlot, 1);
    }
    if (hold.rounds > 0) this.sendKeepalive();
    this.nextKeepaliveAt = this.holdStartedAt + Math.min(hold.keepaliveMs, hold.holdMs);
    hold.schedule.add(this);
  }

  /** HoldSchedule: the next keepalive (or the hold's end) is due. True while the side stays in the schedule. */
  keepalive(): boolean {
    const hold = this.config.hold;
    if (!hold || this.settled || this.closing || this.outcome !== 'established') return false;
    // The peer's rounds so far: one interval behind ours at most (their clocks start apart).
    const peerRounds = Math.floor((this.received - this.config.payload) / KEEPALIVE_BYTES);
    if (peerRounds < Math.min(hold.rounds, this.roundsSent) - 1) {
      this.fail(PAIR_ERRORS.keepalive);
      return false;
    }
    const holdEndsAt = this.holdStartedAt + hold.holdMs;
    if (this.holdState === HOLD.over) {
      // An interval after the hold's end, the peer's last round is still missing.
      if (this.received < this.streamLength) this.fail(PAIR_ERRORS.keepalive);
      return false;
    }
    if (this.nextKeepaliveAt >= holdEndsAt) {
      this.holdState = HOLD.over;
      this.uncountHeld();
      this.advance();
      if (this.closing || this.received >= this.streamLength || !this.isA) return false;
      // A waits one interval more for B's last keepalive.
      this.nextKeepaliveAt += hold.keepaliveMs;
      return true;
    }
    if (this.roundsSent < hold.rounds) this.sendKeepalive();
    this.nextKeepaliveAt = Math.min(this.nextKeepaliveAt + hold.keepaliveMs, holdEndsAt);
    return true;
  }

  /** The next KEEPALIVE_BYTES of this side's stream. */
  private sendKeepalive(): void {
    const socket = this.socket;
    if (!socket) return;
    const position = this.config.payload + this.roundsSent * KEEPALIVE_BYTES;
    this.roundsSent += 1;
    const pattern = this.isA ? this.config.patterns.aToB : this.config.patterns.bToA;
    const start = (this.offset + position) % PATTERN_PERIOD;
    const data = pattern.subarray(start, start + KEEPALIVE_BYTES);
    socket.write(data);
  }

  /** Every keepalive of the peer's arrived intact. */
  private countKeepalives(): void {
    const hold = this.config.hold;
    if (hold) Atomics.add(hold.counters, hold.keepalivesSlot, hold.rounds);
  }

  private uncountHeld(): void {
    const hold = this.config.hold;
    if (!hold || !this.countedHeld) return;
    this.countedHeld = false;
    Atomics.sub(hold.counters, hold.heldSlot, 1);
  }

  private settle(): void {
    this.uncountHeld();
    if (this.settled) return;
    this.settled = true;
    this.finishedAt = performance.now();
    this.onDone(this);
  }
}

const socketOnRead = {
  buffer: readBuffer,
  callback: onRead as (length: number, buffer: Uint8Array) => boolean,
};

function onConnect(this: NetSideSocket): void {
  this[kSide].handleConnect();
}

function onRead(this: NetSideSocket, length: number): boolean {
  this[kSide].handleData(readBuffer, length);
  return true;
}

function onEnd(this: NetSideSocket): void {
  this[kSide].handleEnd();
}

function onError(this: NetSideSocket, error: NodeJS.ErrnoException): void {
  this[kSide].handleError(error.code ?? 'EUNKNOWN');
}

function onClose(this: NetSideSocket): void {
  this[kSide].handleClose();
}

const rawEvents: RawSocketEvents = {
  onConnect(socket) {
    (socket.owner as AgentSide).handleConnect();
  },
  onData(socket, buffer, length) {
    (socket.owner as AgentSide).handleData(buffer, length);
  },
  onEnd(socket) {
    (socket.owner as AgentSide).handleEnd();
  },
  onWritten() {},
  onError(socket, code) {
    (socket.owner as AgentSide).handleError(code);
  },
  onClose(socket) {
    (socket.owner as AgentSide).handleClose();
  },
};
