/**
 * One end of a control connection, for the agent and the coordinator alike: frames in and out
 * (lib/agent/controlCodec.ts), every incoming message checked for its direction, a small frame limit
 * until the peer is authenticated, and silence detection: a peer that sends nothing for `silenceMs`
 * is dropped. A malformed or oversized frame drops the connection with the reason; nothing else is
 * affected.
 */
import type net from 'node:net';
import { ControlProtocolError, encodeFrame, FrameDecoder } from './controlCodec.ts';
import { CONTROL_ERRORS, MAX_FRAME_BYTES, MAX_PREAUTH_FRAME_BYTES } from './types.ts';

export interface ControlConnectionOptions<In> {
  socket: net.Socket;
  /** Checks one decoded message for this direction (asAgentMessage, asCoordinatorMessage). */
  decode: (message: Record<string, unknown>) => In;
  silenceMs: number;
  onMessage: (message: In) => void;
  /**
   * Called once when the connection is over: `reason` says why we dropped it (a protocol error,
   * silence), or is undefined when the peer closed it or close() was called.
   */
  onClose: (reason: string | undefined) => void;
}

export class ControlConnection<In, Out extends object> {
  readonly socket: net.Socket;
  readonly remote: string;
  private readonly decoder = new FrameDecoder(MAX_PREAUTH_FRAME_BYTES);
  private silenceTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private dropReason: string | undefined;
  /** Time of the last frame received (performance.now()). */
  lastHeard = performance.now();
  private silenceMs: number;

  constructor(private readonly options: ControlConnectionOptions<In>) {
    const { socket } = options;
    this.silenceMs = options.silenceMs;
    this.socket = socket;
    this.remote = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (error: NodeJS.ErrnoException) => {
      this.dropReason ??= `connection error ${error.code ?? error.message}`;
    });
    socket.on('close', () => this.finish());
    this.armSilence();
  }

  /** The peer proved the token: frames up to MAX_FRAME_BYTES from now on. */
  authenticated(): void {
    this.decoder.limit = MAX_FRAME_BYTES;
  }

  /** Another silence limit from now on (the pre-authentication one is short). */
  setSilence(ms: number): void {
    this.silenceMs = ms;
    this.armSilence();
  }

  get open(): boolean {
    return !this.closed;
  }

  /** Sends one message; false once the connection is closed. */
  send(message: Out): boolean {
    if (this.closed || this.socket.destroyed) return false;
    this.socket.write(encodeFrame(message));
    return true;
  }

  /** Sends this message (an error, say), then closes once it is written. */
  sendAndClose(message: Out, reason?: string): void {
    if (reason) this.dropReason ??= reason;
    if (this.send(message)) this.socket.end();
    this.socket.setTimeout(1000, () => this.socket.destroy());
  }

  /** Closes now; `reason` is reported to onClose as ours. */
  close(reason?: string): void {
    if (reason) this.dropReason ??= reason;
    this.socket.destroy();
  }

  private armSilence(): void {
    clearTimeout(this.silenceTimer);
    this.silenceTimer = setTimeout(() => this.close(`silent for ${this.silenceMs} ms`), this.silenceMs);
    this.silenceTimer.unref();
  }

  private onData(chunk: Buffer): void {
    if (this.closed) return;
    this.lastHeard = performance.now();
    this.armSilence();
    let messages: Record<string, unknown>[];
    try {
      messages = this.decoder.push(chunk);
    } catch (error) {
      this.protocolError(error);
      return;
    }
    for (const raw of messages) {
      if (this.closed || this.socket.destroyed) return;
      let message: In;
      try {
        message = this.options.decode(raw);
      } catch (error) {
        this.protocolError(error);
        return;
      }
      this.options.onMessage(message);
    }
  }

  private protocolError(error: unknown): void {
    const protocol = error instanceof ControlProtocolError ? error : undefined;
    const reason = protocol ? protocol.message : String(error);
    // Tell the peer why (it may be one of ours, misconfigured), then drop it.
    this.sendAndClose(
      { type: 'error', code: protocol?.code ?? CONTROL_ERRORS.protocol, message: reason } as unknown as Out,
      reason,
    );
  }

  private finish(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.silenceTimer);
    this.options.onClose(this.dropReason);
  }
}
