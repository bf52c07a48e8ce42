/**
 * One pair in sandbox mode: both sides connect() to each other from one thread. In the sandbox the
 * RST answering A's early SYN is dropped, so A waits in SYN_SENT and B's SYN meets it: the
 * simultaneous open completes on the first attempt. Then each side sends its payload pattern, checks
 * every byte it receives, and the pair closes the requested way.
 *
 * Built for many pairs in flight per thread: no per-pair closures (the handlers are shared and find
 * their pair through the socket), and one read buffer for every socket of the thread.
 */
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { chunkMatches, type Patterns, patternOffset } from '../core/payloadPattern.ts';
import { RawSocket, type RawSocketEvents } from '../core/rawTcp.ts';
import {
  type CloseMode,
  type CloseOutcome,
  type Outcome,
  PAIR_ERRORS,
  type PairEndpoints,
  type PairReport,
  type SocketKind,
} from './types.ts';

export interface PairConfig {
  payload: number;
  close: CloseMode;
  patterns: Patterns;
  sockets: SocketKind;
}

/** What the pair needs from a socket; net.Socket and RawSocket both have it. */
interface PairSide {
  end(): unknown;
  resetAndDestroy(): unknown;
  destroy(): unknown;
}

const kPair = Symbol('pair');
const kSide = Symbol('side');
type PairSocket = net.Socket & { [kPair]: SandboxPair; [kSide]: 0 | 1 };

/** One buffer for all reads of this thread: the data is checked synchronously and dropped. */
const readBuffer = Buffer.allocUnsafe(64 * 1024);

export class SandboxPair implements PairReport {
  outcome: Outcome = 'established';
  error: string | undefined;
  attempts: [number, number] = [0, 0];
  establishUs: [number, number] = [-1, -1];
  bytesVerified = 0;
  closeOutcome: CloseOutcome | undefined;
  startedAt = 0;
  finishedAt = 0;

  private readonly sockets: [PairSide | undefined, PairSide | undefined] = [undefined, undefined];
  private readonly received: [number, number] = [0, 0];
  private readonly sawEof: [boolean, boolean] = [false, false];
  /** Each side's payload is in its kernel's send buffer. */
  private readonly written: [boolean, boolean];
  private connected = 0;
  private closed = 0;
  private closing = false;
  private sawReset = false;
  private settled = false;
  private readonly offset: number;

  constructor(
    readonly id: number,
    readonly endpoints: PairEndpoints,
    private readonly config: PairConfig,
    private readonly onDone: (pair: SandboxPair) => void,
  ) {
    this.offset = patternOffset(id);
    this.written = config.payload === 0 ? [true, true] : [false, false];
  }

  /** Starts both connects: A first, so its SYN is the early one that goes unanswered. */
  start(): void {
    this.startedAt = performance.now();
    const { a, b } = this.endpoints;
    this.sockets[0] = this.connectSide(0, a, b);
    this.sockets[1] = this.connectSide(1, b, a);
  }

  /** Ends the pair now with this failure code (a timeout, say); no-op once it is over. */
  fail(code: string): void {
    if (this.settled || this.outcome !== 'established') return;
    this.outcome = 'failed';
    this.error = code;
    this.destroySockets();
  }

  cancel(): void {
    if (this.settled || this.outcome !== 'established') return;
    this.outcome = 'cancelled';
    this.error = PAIR_ERRORS.cancelled;
    this.destroySockets();
  }

  private connectSide(
    side: 0 | 1,
    local: { host: string; port: number },
    remote: { host: string; port: number },
  ): PairSide {
    this.attempts[side] = 1;
    if (this.config.sockets === 'handle') {
      const raw = new RawSocket(rawEvents, this);
      raw.connect(local, remote);
      return raw;
    }
    // onread (one shared buffer, no 'data' events) is honoured by the constructor only; @types/node omits it there.
    const socket = new net.Socket({ onread: socketOnRead } as net.SocketConstructorOpts) as PairSocket;
    socket[kPair] = this;
    socket[kSide] = side;
    socket.on('connect', onConnect);
    socket.on('end', onEnd);
    socket.on('error', onError);
    socket.on('close', onClose);
    socket.connect({
      host: remote.host,
      port: remote.port,
      localAddress: local.host,
      localPort: local.port,
    });
    return socket;
  }

  private destroySockets(): void {
    this.sockets[0]?.destroy();
    this.sockets[1]?.destroy();
  }

  handleConnect(side: 0 | 1): void {
    this.establishUs[side] = (performance.now() - this.startedAt) * 1000;
    this.connected += 1;
    const socket = this.sockets[side];
    if (this.config.payload > 0 && socket) {
      const pattern = side === 0 ? this.config.patterns.aToB : this.config.patterns.bToA;
      const data = pattern.subarray(this.offset, this.offset + this.config.payload);
      if (socket instanceof RawSocket) this.written[side] = socket.write(data);
      else (socket as net.Socket).write(data, () => this.handleWritten(side));
    }
    this.maybeClose();
  }

  handleWritten(side: 0 | 1): void {
    this.written[side] = true;
    this.maybeClose();
  }

  /** Which side a socket is (for the raw sockets, which carry only their pair). */
  sideOf(socket: unknown): 0 | 1 {
    return socket === this.sockets[0] ? 0 : 1;
  }

  handleData(side: 0 | 1, buffer: Buffer, length: number): void {
    if (this.outcome !== 'established') return;
    const received = this.received[side];
    // Side A receives what B sends, and the other way round.
    const pattern = side === 0 ? this.config.patterns.bToA : this.config.patterns.aToB;
    if (
      received + length > this.config.payload ||
      !chunkMatches(pattern, this.offset, received, buffer, length)
    ) {
      this.fail(PAIR_ERRORS.payload);
      return;
    }
    this.received[side] = received + length;
    this.bytesVerified += length;
    this.maybeClose();
  }

  handleEnd(side: 0 | 1): void {
    // EOF before the whole payload arrived: the peer closed too early.
    if (this.received[side] !== this.config.payload) this.fail(PAIR_ERRORS.payload);
    this.sawEof[side] = true;
  }

  handleError(side: 0 | 1, code: string): void {
    if (this.closing && this.config.close === 'reset' && side === 1 && code === 'ECONNRESET') {
      this.sawReset = true;
      return;
    }
    this.fail(code);
  }

  handleClose(): void {
    this.closed += 1;
    if (this.closed < 2) return;
    if (this.outcome === 'established') {
      const closedAsAsked =
        this.config.close === 'reset'
          ? this.sawReset
          : this.config.close === 'graceful'
            ? this.sawEof[1]
            : this.sawEof[0] && this.sawEof[1];
      if (this.connected === 2 && closedAsAsked) {
        this.closeOutcome = this.config.close === 'reset' ? 'rst' : 'fin';
      } else {
        this.outcome = 'failed';
        this.error = this.connected === 2 ? PAIR_ERRORS.close : 'ECONNABORTED';
      }
    }
    this.settled = true;
    this.finishedAt = performance.now();
    this.sockets[0] = undefined;
    this.sockets[1] = undefined;
    this.onDone(this);
  }

  /** Closes once both sides are connected and what must have arrived has arrived. */
  private maybeClose(): void {
    if (this.closing || this.connected < 2 || this.outcome !== 'established') return;
    const [a, b] = this.sockets;
    if (!a || !b) return;
    const payload = this.config.payload;
    switch (this.config.close) {
      case 'graceful':
        // A closes (close(2): FIN, nothing is unread) once its payload is out and B's is in; B reads
        // A's payload and the EOF, then closes too. A's kernel socket takes B's FIN into TIME_WAIT.
        if (this.received[0] < payload || !this.written[0]) return;
        this.closing = true;
        a.destroy();
        break;
      case 'simultaneous':
        // Both shut down back to back. That alone does not make the FINs cross: on loopback the first
        // FIN reaches the peer inside the first shutdown(), so the peer would close passively. The
        // sandbox's nft rules (lib/stress/finCrossing.ts crossFinsRuleset) hold both FINs and let them go together.
        if (this.received[0] < payload || this.received[1] < payload) return;
        this.closing = true;
        a.end();
        b.end();
        break;
      case 'reset':
        if (this.received[0] < payload || this.received[1] < payload) return;
        this.closing = true;
        a.resetAndDestroy();
        break;
    }
  }
}

const socketOnRead = {
  buffer: readBuffer,
  callback: onRead as (length: number, buffer: Uint8Array) => boolean,
};

function onConnect(this: PairSocket): void {
  this[kPair].handleConnect(this[kSide]);
}

function onRead(this: PairSocket, length: number): boolean {
  this[kPair].handleData(this[kSide], readBuffer, length);
  return true;
}

function onEnd(this: PairSocket): void {
  this[kPair].handleEnd(this[kSide]);
}

function onError(this: PairSocket, error: NodeJS.ErrnoException): void {
  this[kPair].handleError(this[kSide], error.code ?? 'EUNKNOWN');
}

function onClose(this: PairSocket): void {
  this[kPair].handleClose();
}

/** Raw sockets know their pair (owner); the pair knows which side they are. */
const rawEvents: RawSocketEvents = {
  onConnect(socket) {
    const pair = socket.owner as SandboxPair;
    pair.handleConnect(pair.sideOf(socket));
  },
  onData(socket, buffer, length) {
    const pair = socket.owner as SandboxPair;
    pair.handleData(pair.sideOf(socket), buffer, length);
  },
  onEnd(socket) {
    const pair = socket.owner as SandboxPair;
    pair.handleEnd(pair.sideOf(socket));
  },
  onWritten(socket) {
    const pair = socket.owner as SandboxPair;
    pair.handleWritten(pair.sideOf(socket));
  },
  onError(socket, code) {
    const pair = socket.owner as SandboxPair;
    pair.handleError(pair.sideOf(socket), code);
  },
  onClose(socket) {
    (socket.owner as SandboxPair).handleClose();
  },
};
