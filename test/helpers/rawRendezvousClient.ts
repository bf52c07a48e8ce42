/** A raw rendezvous protocol client for the tests: sends lines, answers pings, keeps what the server says. */
import net from 'node:net';
import {
  authToken,
  decodeServerMessage,
  LineSplitter,
  PROTOCOL_VERSION,
} from '../../lib/rendezvous/protocol.ts';
import type { ServerMessage } from '../../lib/rendezvous/types.ts';

export class RawClient {
  readonly received: ServerMessage[] = [];
  readonly closed: Promise<void>;
  private readonly socket: net.Socket;
  private readonly waiters: (() => void)[] = [];

  constructor(port: number, options: { host?: string; localPort?: number } = {}) {
    this.socket = net.connect({
      host: options.host ?? '127.0.0.1',
      port,
      ...(options.localPort ? { localPort: options.localPort } : {}),
    });
    const splitter = new LineSplitter();
    this.socket.setEncoding('utf8');
    this.socket.on('data', (chunk: string) => {
      for (const line of splitter.push(chunk)) {
        const decoded = decodeServerMessage(line);
        if (!decoded.ok) throw new Error(`server sent a bad line: ${line}`);
        this.received.push(decoded.message);
        if (decoded.message.type === 'ping')
          this.send({ v: PROTOCOL_VERSION, type: 'pong', id: decoded.message.id });
      }
      for (const wake of this.waiters.splice(0)) wake();
    });
    this.socket.on('error', () => {});
    this.closed = new Promise((resolve) => this.socket.once('close', () => resolve()));
  }

  send(message: object | string) {
    this.socket.write(typeof message === 'string' ? message : `${JSON.stringify(message)}\n`);
  }

  register(session: string, secret: string, name: string) {
    this.send({
      v: PROTOCOL_VERSION,
      type: 'register',
      session,
      auth: authToken(secret, session),
      name,
      probed: null,
    });
  }

  /** The first message of this type, waiting for it; throws if the server closes first. */
  async waitFor<T extends ServerMessage['type']>(type: T): Promise<Extract<ServerMessage, { type: T }>> {
    for (;;) {
      const found = this.received.find((message) => message.type === type);
      if (found) return found as Extract<ServerMessage, { type: T }>;
      let closed = false;
      await Promise.race([
        new Promise<void>((resolve) => this.waiters.push(resolve)),
        this.closed.then(() => {
          closed = true;
        }),
      ]);
      if (closed && !this.received.some((message) => message.type === type))
        throw new Error(`closed without '${type}'; got ${JSON.stringify(this.received)}`);
    }
  }

  has(type: ServerMessage['type']): boolean {
    return this.received.some((message) => message.type === type);
  }

  errorCode(): string | undefined {
    const error = this.received.find((message) => message.type === 'error');
    return error?.type === 'error' ? error.code : undefined;
  }

  destroy() {
    this.socket.destroy();
  }
}
