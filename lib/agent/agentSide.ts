/**
 * One side of a pair whose other side runs in another process, usually on another agent behind
 * another NAT: bind the side's local endpoint, connect() to the peer's public endpoint, and retry at
 * once after a refusal (a router that answers an early SYN with RST) until the SYNs meet or the pair's
 * timeout. Then, as in race mode (lib/stress/raceSide.ts): A sends its payload; B checks it and sends
 * its own; A checks that and closes the asked way (B only answers, so nothing is in flight when A
 * resets). Each side checks every byte it receives.
 *
 * Built for many sides in flight per thread, like lib/stress/sandboxPair.ts: the handlers are shared
 * and find their side through the socket, and bare TCP handles (lib/core/rawTcp.ts) are the default.
 */
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { chunkMatches, type Patterns, patternOffset } from '../core/payloadPattern.ts';
import { RawSocket, type RawSocketEvents } from '../core/rawTcp.ts';
import type { Endpoint } from '../core/types.ts';
import { RETRYABLE_CODES } from '../peer/dialSimultaneous.ts';
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
}

/** What the side needs from a socket; net.Socket and RawSocket both have it. */
interface SideSocket {
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
    if (socket instanceof RawSocket) socket.write(data);
    else (socket as net.Socket).write(data);
  }

  handleData(buffer: Buffer, length: number): void {
    if (this.outcome !== 'established') return;
    // A receives what B sends, and the other way round.
    const pattern = this.isA ? this.config.patterns.bToA : this.config.patterns.aToB;
    if (
      this.received + length > this.config.payload ||
      !chunkMatches(pattern, this.offset, this.received, buffer, length)
    ) {
      this.fail(PAIR_ERRORS.payload);
      return;
    }
    this.received += length;
    this.bytesVerified += length;
    if (!this.isA && this.received === this.config.payload) this.send();
    this.advance();
  }

  handleEnd(): void {
    // EOF before the whole payload arrived: the peer closed too early.
    if (this.received !== this.config.payload) this.fail(PAIR_ERRORS.payload);
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

  private settle(): void {
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
