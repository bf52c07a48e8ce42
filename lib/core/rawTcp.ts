/**
 * Sockets straight on Node's libuv TCP handles (process.binding('tcp_wrap'), the layer net.Socket is
 * built on), for the sandbox hot path of stress.ts. A net.Socket is a full Duplex stream: two stream
 * states, buffering, several nextTicks and about a dozen objects per connection. Opening, checking and
 * closing tens of thousands of pairs a second that costs about as much as the kernel's own work, so
 * this file keeps only what a pair needs: bind, connect, one write, reads into a shared buffer,
 * shutdown, reset and close, with the same events a net.Socket would give. A RawSocket is the handle
 * itself (a subclass of the binding's TCP): one JS object per socket, its state in its own fields, so
 * thousands of held sockets cost little more than libuv's and Node's native part.
 *
 * process.binding is a pending deprecation (DEP0111) but its tcp_wrap and stream_wrap entries are on
 * Node's allow list and have been stable since Node 12. rawTcpUnavailable() checks that they exist;
 * rawTcpSelfTest.ts checks that they behave, with one real connection, and stress falls back to
 * net.Socket (--sockets net) when either fails (lib/stress/prepareRun.ts).
 */
import { getSystemErrorName } from 'node:util';

interface ReqWrap {
  oncomplete: (...args: never[]) => void;
  handle?: RawSocket;
}

/** The binding's TCP handle, as RawSocket uses it (its native connect is called by name, see below). */
interface TcpHandle {
  bind(host: string, port: number): number;
  readStart(): number;
  useUserBuffer(buffer: Uint8Array): void;
  writeBuffer(req: ReqWrap, buffer: Uint8Array): number;
  shutdown(req: ReqWrap): number;
  reset(callback: () => void): number;
  close(callback: () => void): void;
  onread: (this: RawSocket, arrayBuffer: ArrayBuffer) => void;
}

type TcpConstructor = new (type: number) => TcpHandle;
type NativeConnect = (this: TcpHandle, req: ReqWrap, host: string, port: number) => number;

interface Bindings {
  TCP: TcpConstructor;
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

/** Without the bindings, constructing a RawSocket throws why (rawTcpUnavailable). */
class Unavailable {
  constructor(_type: number) {
    throw new Error(unavailable);
  }
}

const Handle = (load()?.TCP ?? Unavailable) as TcpConstructor;
const nativeConnect = (bindings?.TCP.prototype as unknown as { connect: NativeConnect } | undefined)?.connect;

/** RawSocket state bits; the count of writes not yet done is kept above them. */
const CLOSING = 1;
const SHUT_DOWN = 2;
const PENDING_WRITE = 4;

/**
 * A client TCP socket on a bare handle with net.Socket's event order: connect, data*, end, error?,
 * close (always last, once). Like net.Socket with allowHalfOpen off, EOF ends our side too.
 */
export class RawSocket extends Handle {
  /** CLOSING, SHUT_DOWN, and PENDING_WRITE times the writes not yet in the kernel. */
  private state = 0;
  /** Caller's tag: which pair and side this socket belongs to. */
  owner: unknown;

  constructor(
    private readonly events: RawSocketEvents,
    owner: unknown,
  ) {
    super((bindings as Bindings).SOCKET);
    this.owner = owner;
    this.onread = onRead;
  }

  /** bind() then connect(); failures arrive as an error event then close, as with net.Socket. */
  connect(local: { host: string; port: number }, remote: { host: string; port: number }): void {
    const b = bindings as Bindings;
    let err = this.bind(local.host, local.port);
    if (err === 0) {
      const req = new b.TCPConnectWrap();
      req.oncomplete = afterConnect as ReqWrap['oncomplete'];
      err = (nativeConnect as NativeConnect).call(this, req, remote.host, remote.port);
    }
    if (err !== 0) queueMicrotask(() => this.fail(err));
  }

  /**
   * Queues `data`; true when the kernel took all of it at once. Otherwise onWritten follows once it
   * has (the buffer must stay untouched until then).
   */
  write(data: Uint8Array): boolean {
    if (this.state & CLOSING) return false;
    const b = bindings as Bindings;
    const req = new b.WriteWrap();
    req.handle = this;
    req.oncomplete = afterWrite as ReqWrap['oncomplete'];
    req.async = false;
    const err = this.writeBuffer(req, data);
    if (err !== 0) {
      this.fail(err);
      return false;
    }
    if (b.streamBaseState[b.kLastWriteWasAsync] === 0) return true;
    this.state += PENDING_WRITE;
    return false;
  }

  /** Half-close: FIN after the data written so far; reading goes on until the peer's EOF. */
  end(): void {
    if (this.state & (CLOSING | SHUT_DOWN)) return;
    this.state |= SHUT_DOWN;
    const req = new (bindings as Bindings).ShutdownWrap();
    req.handle = this;
    req.oncomplete = noop;
    const err = this.shutdown(req);
    if (err !== 0) this.fail(err);
  }

  /** Abortive close: RST instead of FIN, no TIME_WAIT. */
  resetAndDestroy(): void {
    if (this.state & CLOSING) return;
    this.state |= CLOSING;
    const err = this.reset(() => this.events.onClose(this));
    if (err !== 0) this.close(() => this.events.onClose(this));
  }

  /** Close now (FIN if nothing unread, else RST, as close(2) does). */
  destroy(): void {
    if (this.state & CLOSING) return;
    this.state |= CLOSING;
    this.close(() => this.events.onClose(this));
  }

  handleConnected(status: number): void {
    if (this.state & CLOSING) return; // closed while connecting: the close event follows
    if (status < 0) {
      this.fail(status);
      return;
    }
    this.useUserBuffer(readBuffer);
    const err = this.readStart();
    if (err !== 0) {
      this.fail(err);
      return;
    }
    this.events.onConnect(this);
  }

  handleRead(nread: number): void {
    if (this.state & CLOSING) return;
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
    this.state -= PENDING_WRITE;
    if (status < 0) this.fail(status);
    else if (this.state < PENDING_WRITE && !(this.state & CLOSING)) this.events.onWritten(this);
  }

  private fail(errno: number): void {
    if (this.state & CLOSING) return;
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

function afterConnect(status: number, socket: RawSocket): void {
  socket.handleConnected(status);
}

function afterWrite(this: ReqWrap, status: number): void {
  this.handle?.handleWriteDone(status);
}

function onRead(this: RawSocket): void {
  const b = bindings as Bindings;
  this.handleRead(b.streamBaseState[b.kReadBytesOrError] ?? 0);
}
