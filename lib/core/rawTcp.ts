/**
 * Sockets straight on Node's libuv TCP handles (process.binding('tcp_wrap'), the layer net.Socket is
 * built on), for the sandbox hot path of stress.ts. A net.Socket is a full Duplex stream: two stream
 * states, buffering, several nextTicks and about a dozen objects per connection. Opening, checking and
 * closing tens of thousands of pairs a second that costs about as much as the kernel's own work, so
 * this file keeps only what a pair needs: bind, connect, one write, reads into a shared buffer,
 * shutdown, reset and close, with the same events a net.Socket would give.
 *
 * process.binding is a pending deprecation (DEP0111) but its tcp_wrap and stream_wrap entries are on
 * Node's allow list and have been stable since Node 12. rawTcpUnavailable() checks that they exist;
 * rawTcpSelfTest.ts checks that they behave, with one real connection, and stress falls back to
 * net.Socket (--sockets net) when either fails (lib/stress/prepareRun.ts).
 */
import { getSystemErrorName } from 'node:util';

interface ReqWrap {
  oncomplete: (...args: never[]) => void;
  handle?: TcpHandle;
}

interface TcpHandle {
  bind(host: string, port: number): number;
  connect(req: ReqWrap, host: string, port: number): number;
  readStart(): number;
  useUserBuffer(buffer: Uint8Array): void;
  writeBuffer(req: ReqWrap, buffer: Uint8Array): number;
  shutdown(req: ReqWrap): number;
  reset(callback: () => void): number;
  close(callback: () => void): void;
  onread: (this: TcpHandle, arrayBuffer: ArrayBuffer) => void;
  owner: RawSocket;
}

interface Bindings {
  TCP: new (type: number) => TcpHandle;
  TCPConnectWrap: new () => ReqWrap;
  ShutdownWrap: new () => ReqWrap;
  WriteWrap: new () => ReqWrap & { async: boolean };
  SOCKET: number;
  streamBaseState: Int32Array;
  kReadBytesOrError: number;
  kLastWriteWasAsync: number;
  UV_EOF: number;
}

let bindings: Bindings | undefined;
let unavailable: string | undefined;

function load(): Bindings | undefined {
  if (bindings || unavailable) return bindings;
  try {
    // biome-ignore lint/suspicious/noExplicitAny: process.binding is untyped by design
    const binding = (process as any).binding as (name: string) => Record<string, any>;
    const tcp = binding('tcp_wrap');
    const stream = binding('stream_wrap');
    const uv = binding('uv');
    const loaded: Bindings = {
      TCP: tcp.TCP,
      TCPConnectWrap: tcp.TCPConnectWrap,
      ShutdownWrap: stream.ShutdownWrap,
      WriteWrap: stream.WriteWrap,
      SOCKET: tcp.constants?.SOCKET,
      streamBaseState: stream.streamBaseState,
      kReadBytesOrError: stream.kReadBytesOrError,
      kLastWriteWasAsync: stream.kLastWriteWasAsync,
      UV_EOF: uv.UV_EOF,
    };
    const methods = [
      'bind',
      'connect',
      'readStart',
      'useUserBuffer',
      'writeBuffer',
      'shutdown',
      'reset',
      'close',
    ];
    const proto = loaded.TCP?.prototype as Record<string, unknown> | undefined;
    const missing = [
      ...Object.entries(loaded)
        .filter(([, value]) => value === undefined)
        .map(([name]) => name),
      ...methods.filter((name) => typeof proto?.[name] !== 'function'),
    ];
    if (missing.length) throw new Error(`missing ${missing.join(', ')}`);
    bindings = loaded;
  } catch (error) {
    unavailable = `Node's TCP handle bindings are not usable here (${error instanceof Error ? error.message : error})`;
  }
  return bindings;
}

/** Undefined when raw handles work here, else why not. */
export function rawTcpUnavailable(): string | undefined {
  load();
  return unavailable;
}

export interface RawSocketEvents {
  onConnect(socket: RawSocket): void;
  /** `length` bytes arrived at the start of the shared read buffer. */
  onData(socket: RawSocket, buffer: Buffer, length: number): void;
  onEnd(socket: RawSocket): void;
  /** Writes that did not complete at once are now all in the kernel. */
  onWritten(socket: RawSocket): void;
  onError(socket: RawSocket, code: string): void;
  onClose(socket: RawSocket): void;
}

/** One buffer for all reads of this thread: each read is checked synchronously, then overwritten. */
const readBuffer = Buffer.allocUnsafe(64 * 1024);

function noop(): void {}

/**
 * A client TCP socket on a bare handle with net.Socket's event order: connect, data*, end, error?,
 * close (always last, once). Like net.Socket with allowHalfOpen off, EOF ends our side too.
 */
export class RawSocket {
  private readonly handle: TcpHandle;
  private closing = false;
  private shutDown = false;
  private pendingWrites = 0;
  /** Caller's tag: which pair and side this socket belongs to. */
  owner: unknown;

  constructor(
    private readonly events: RawSocketEvents,
    owner: unknown,
  ) {
    const b = bindings ?? load();
    if (!b) throw new Error(unavailable);
    this.owner = owner;
    this.handle = new b.TCP(b.SOCKET);
    this.handle.owner = this;
    this.handle.onread = onRead;
  }

  /** bind() then connect(); failures arrive as an error event then close, as with net.Socket. */
  connect(local: { host: string; port: number }, remote: { host: string; port: number }): void {
    const b = bindings as Bindings;
    let err = this.handle.bind(local.host, local.port);
    if (err === 0) {
      const req = new b.TCPConnectWrap();
      req.oncomplete = afterConnect as ReqWrap['oncomplete'];
      err = this.handle.connect(req, remote.host, remote.port);
    }
    if (err !== 0) queueMicrotask(() => this.fail(err));
  }

  /**
   * Queues `data`; true when the kernel took all of it at once. Otherwise onWritten follows once it
   * has (the buffer must stay untouched until then).
   */
  write(data: Uint8Array): boolean {
    if (this.closing) return false;
    const b = bindings as Bindings;
    const req = new b.WriteWrap();
    req.handle = this.handle;
    req.oncomplete = afterWrite as ReqWrap['oncomplete'];
    req.async = false;
    const err = this.handle.writeBuffer(req, data);
    if (err !== 0) {
      this.fail(err);
      return false;
    }
    if (b.streamBaseState[b.kLastWriteWasAsync] === 0) return true;
    this.pendingWrites += 1;
    return false;
  }

  /** Half-close: FIN after the data written so far; reading goes on until the peer's EOF. */
  end(): void {
    if (this.closing || this.shutDown) return;
    this.shutDown = true;
    const req = new (bindings as Bindings).ShutdownWrap();
    req.handle = this.handle;
    req.oncomplete = noop;
    const err = this.handle.shutdown(req);
    if (err !== 0) this.fail(err);
  }

  /** Abortive close: RST instead of FIN, no TIME_WAIT. */
  resetAndDestroy(): void {
    if (this.closing) return;
    this.closing = true;
    const err = this.handle.reset(() => this.events.onClose(this));
    if (err !== 0) this.handle.close(() => this.events.onClose(this));
  }

  /** Close now (FIN if nothing unread, else RST, as close(2) does). */
  destroy(): void {
    if (this.closing) return;
    this.closing = true;
    this.handle.close(() => this.events.onClose(this));
  }

  handleConnected(status: number): void {
    if (this.closing) return; // closed while connecting: the close event follows
    if (status < 0) {
      this.fail(status);
      return;
    }
    this.handle.useUserBuffer(readBuffer);
    const err = this.handle.readStart();
    if (err !== 0) {
      this.fail(err);
      return;
    }
    this.events.onConnect(this);
  }

  handleRead(nread: number): void {
    if (this.closing) return;
    if (nread > 0) {
      this.events.onData(this, readBuffer, nread);
    } else if (nread === (bindings as Bindings).UV_EOF) {
      this.events.onEnd(this);
      // allowHalfOpen off: nothing unread, so close() sends our FIN if end() has not.
      this.destroy();
    } else if (nread < 0) {
      this.fail(nread);
    }
  }

  handleWriteDone(status: number): void {
    this.pendingWrites -= 1;
    if (status < 0) this.fail(status);
    else if (this.pendingWrites === 0 && !this.closing) this.events.onWritten(this);
  }

  private fail(errno: number): void {
    if (this.closing) return;
    this.events.onError(this, errorCode(errno));
    this.destroy();
  }
}

function errorCode(errno: number): string {
  try {
    return getSystemErrorName(errno);
  } catch {
    return `E${-errno}`;
  }
}

function afterConnect(status: number, handle: TcpHandle): void {
  handle.owner.handleConnected(status);
}

function afterWrite(this: ReqWrap, status: number): void {
  this.handle?.owner.handleWriteDone(status);
}

function onRead(this: TcpHandle): void {
  const b = bindings as Bindings;
  this.owner.handleRead(b.streamBaseState[b.kReadBytesOrError] ?? 0);
}
