/**
 * One side of a pair in race mode (the host's loopback, no RST dropping): the side dials with
 * dialSimultaneous, retrying at once after every refused SYN, while the other side does the same in
 * another thread, until their connects cross. Then A sends its payload; B checks it and sends its
 * own; A checks that and closes the requested way (B only answers: so nothing is in flight when
 * A resets).
 */
import type net from 'node:net';
import { performance } from 'node:perf_hooks';
import { chunkMatches, type Patterns, patternOffset } from '../core/payloadPattern.ts';
import { DialError, dialSimultaneous } from '../peer/dialSimultaneous.ts';
import { type CloseMode, type CloseOutcome, type Outcome, PAIR_ERRORS, type PairEndpoints } from './types.ts';

export interface SideConfig {
  payload: number;
  close: CloseMode;
  patterns: Patterns;
  timeoutMs: number;
}

export class RaceSide {
  outcome: Outcome = 'established';
  error: string | undefined;
  attempts = 0;
  /** From this side's start to its connection (-1: never). */
  establishUs = -1;
  bytesVerified = 0;
  closeOutcome: CloseOutcome | undefined;
  retryErrors: Record<string, number> = {};
  startedAt = 0;
  finishedAt = 0;

  private socket: net.Socket | undefined;
  private readonly abort = new AbortController();
  private received = 0;
  private sawEof = false;
  private sawReset = false;
  private closing = false;
  private settled = false;
  private readonly offset: number;

  constructor(
    readonly id: number,
    readonly side: 0 | 1,
    readonly endpoints: PairEndpoints,
    private readonly config: SideConfig,
    private readonly onDone: (side: RaceSide) => void,
  ) {
    this.offset = patternOffset(id);
  }

  start(): void {
    this.startedAt = performance.now();
    const { a, b } = this.endpoints;
    const [local, remote] = this.side === 0 ? [a, b] : [b, a];
    dialSimultaneous({
      local,
      remote,
      retryIntervalMs: 0,
      deadlineMs: this.config.timeoutMs,
      signal: this.abort.signal,
    }).then(
      (result) => {
        this.attempts = result.attempts;
        this.retryErrors = result.errors;
        this.onConnected(result.socket);
      },
      (error: unknown) => {
        if (error instanceof DialError) {
          this.attempts = error.attempts;
          this.retryErrors = error.errors;
        }
        if (this.outcome === 'established') {
          this.outcome = 'failed';
          this.error =
            error instanceof DialError && error.code !== 'EDEADLINE' ? error.code : PAIR_ERRORS.timeout;
        }
        this.settle();
      },
    );
  }

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
    if (this.socket) this.socket.destroy();
    else this.abort.abort();
  }

  private onConnected(socket: net.Socket): void {
    this.establishUs = (performance.now() - this.startedAt) * 1000;
    this.socket = socket;
    if (this.outcome !== 'established') {
      // Cancelled or timed out while the connect completed.
      socket.destroy();
      this.settle();
      return;
    }
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('end', () => {
      if (this.received !== this.config.payload) this.fail(PAIR_ERRORS.payload);
      this.sawEof = true;
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      if (this.side === 1 && this.config.close === 'reset' && error.code === 'ECONNRESET')
        this.sawReset = true;
      else this.fail(error.code ?? 'EUNKNOWN');
    });
    socket.on('close', () => this.onClose());
    if (this.side === 0) this.send();
    this.advance();
  }

  private send(): void {
    if (this.config.payload === 0 || !this.socket) return;
    const pattern = this.side === 0 ? this.config.patterns.aToB : this.config.patterns.bToA;
    this.socket.write(pattern.subarray(this.offset, this.offset + this.config.payload));
  }

  private onData(chunk: Buffer): void {
    if (this.outcome !== 'established') return;
    const pattern = this.side === 0 ? this.config.patterns.bToA : this.config.patterns.aToB;
    if (
      this.received + chunk.length > this.config.payload ||
      !chunkMatches(pattern, this.offset, this.received, chunk, chunk.length)
    ) {
      this.fail(PAIR_ERRORS.payload);
      return;
    }
    this.received += chunk.length;
    this.bytesVerified += chunk.length;
    if (this.side === 1 && this.received === this.config.payload) this.send();
    this.advance();
  }

  /** The next step once everything this side waits for has arrived. */
  private advance(): void {
    const socket = this.socket;
    if (this.closing || !socket || this.received < this.config.payload) return;
    this.closing = true;
    if (this.side === 1) {
      // B has A's payload (and sent its own): it only ends first when asked for a simultaneous close.
      // Best effort: nothing holds the FINs on the host loopback, so they cross only when the two
      // threads happen to send them together (--trace shows it; sandbox mode makes them cross).
      if (this.config.payload === 0) this.send();
      if (this.config.close === 'simultaneous') socket.end();
      return;
    }
    if (this.config.close === 'reset') socket.resetAndDestroy();
    else socket.end();
  }

  private onClose(): void {
    if (this.outcome === 'established') {
      const asked =
        this.config.close === 'reset' ? (this.side === 0 ? this.closing : this.sawReset) : this.sawEof;
      if (asked) this.closeOutcome = this.config.close === 'reset' ? 'rst' : 'fin';
      else {
        this.outcome = 'failed';
        this.error = PAIR_ERRORS.close;
      }
    }
    this.settle();
  }

  private settle(): void {
    if (this.settled) return;
    this.settled = true;
    this.finishedAt = performance.now();
    this.socket = undefined;
    this.onDone(this);
  }
}
