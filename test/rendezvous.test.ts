/**
 * The rendezvous protocol (pure) and server (real sockets on host loopback, ports 33400-33499):
 * abusive clients each get a clear error and are dropped while other sessions keep working.
 */
import net from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DialError } from '../lib/peer/dialSimultaneous.ts';
import { explainFailure } from '../lib/rendezvous/client.ts';
import {
  authToken,
  classifyMapping,
  decodeClientMessage,
  decodeServerMessage,
  encodeMessage,
  LineSplitter,
  MAX_LINE_BYTES,
  startDelays,
} from '../lib/rendezvous/protocol.ts';
import { type RendezvousServer, startRendezvousServer } from '../lib/rendezvous/server.ts';
import type { PeerInfo, ServerMessage } from '../lib/rendezvous/types.ts';
import { runScript } from './helpers/runScript.ts';

describe('rendezvous protocol', () => {
  it('round-trips a register message and rejects what is not the protocol', () => {
    const auth = authToken('s3cret', 'demo');
    const line = encodeMessage({
      v: 1,
      type: 'register',
      session: 'demo',
      auth,
      name: 'alice',
      probed: null,
    });
    expect(line.endsWith('\n')).toBe(true);
    expect(decodeClientMessage(line.trim())).toEqual({
      ok: true,
      message: { v: 1, type: 'register', session: 'demo', auth, name: 'alice', probed: null },
    });
    expect(decodeClientMessage('hello')).toMatchObject({ ok: false, code: 'malformed' });
    expect(decodeClientMessage('[1]')).toMatchObject({ ok: false, code: 'malformed' });
    expect(decodeClientMessage('{"v":2,"type":"probe"}')).toMatchObject({ ok: false, code: 'bad-version' });
    expect(decodeClientMessage('{"v":1,"type":"register","session":"a b","auth":"x"}')).toMatchObject({
      ok: false,
      code: 'malformed',
    });
    expect(decodeClientMessage(`{"v":1,"type":"probe","pad":"${'x'.repeat(MAX_LINE_BYTES)}"}`)).toMatchObject(
      {
        ok: false,
        code: 'too-large',
      },
    );
    expect(decodeServerMessage('{"v":1,"type":"peer","self":{},"peer":{},"startInMs":1}')).toMatchObject({
      ok: false,
      code: 'malformed',
    });
  });

  it('the auth token depends on both secret and session, and does not contain the secret', () => {
    const token = authToken('s3cret', 'demo');
    expect(token).toMatch(/^[0-9a-f]{64}$/);
    expect(token).not.toContain('s3cret');
    expect(authToken('other', 'demo')).not.toBe(token);
    expect(authToken('s3cret', 'demo2')).not.toBe(token);
  });

  it('splits lines and refuses a line over the limit, with or without its newline', () => {
    const splitter = new LineSplitter(64);
    expect(splitter.push('{"a":1}\n{"b"')).toEqual(['{"a":1}']);
    expect(splitter.push(':2}\r\n')).toEqual(['{"b":2}']);
    expect(() => new LineSplitter(64).push('x'.repeat(64))).toThrow(/exceeds 64 bytes/);
    expect(() => new LineSplitter(64).push(`${'x'.repeat(70)}\n`)).toThrow(/exceeds 64 bytes/);
  });

  it('start delays make both SYNs leave together; mappings are classified from two observations', () => {
    // Peer 0 is 40 ms away (20 one way), peer 1 is 2 ms away: the near one waits longer.
    const [near, far] = startDelays([2, 40], 50);
    expect(1 + near).toBe(20 + far);
    expect(classifyMapping({ host: '203.0.113.1', port: 5000 }, { host: '203.0.113.1', port: 5000 })).toBe(
      'endpoint-independent',
    );
    expect(classifyMapping({ host: '203.0.113.1', port: 5000 }, { host: '203.0.113.1', port: 6123 })).toBe(
      'endpoint-dependent',
    );
    expect(classifyMapping({ host: '203.0.113.1', port: 5000 }, null)).toBe('unknown');
  });
});

describe('explaining a failed punch', () => {
  const side = (mapping: PeerInfo['mapping'], name = ''): PeerInfo => ({
    name,
    endpoint: { host: '203.0.113.1', port: 5000 },
    mapping,
    rttMs: 1,
  });
  const timeout = (errors: Record<string, number>) => new DialError('no peer', 'EDEADLINE', 3, errors, 3000);

  it('blames a symmetric NAT first, then refusals, then silence', () => {
    const symmetric = explainFailure(
      side('endpoint-independent'),
      side('endpoint-dependent', 'bob'),
      timeout({}),
    );
    expect(symmetric.code).toBe('ESYMMETRIC');
    expect(symmetric.text).toMatch(/^the peer's \(bob's\) NAT is a symmetric NAT .*cannot be predicted$/);
    const both = explainFailure(side('endpoint-dependent'), side('endpoint-dependent'), timeout({}));
    expect(both.text).toMatch(/^our NAT and the peer's NAT are symmetric NATs/);
    const refused = explainFailure(
      side('endpoint-independent'),
      side('unknown'),
      timeout({ ECONNREFUSED: 40 }),
    );
    expect(refused).toMatchObject({ code: 'EREFUSED' });
    expect(refused.text).toMatch(/never crossed in time/);
    expect(explainFailure(side('unknown'), side('unknown'), timeout({})).code).toBe('ENOPATH');
    const local = explainFailure(
      side('endpoint-independent'),
      side('endpoint-independent'),
      new DialError('in use', 'EADDRINUSE', 1, {}, 1),
    );
    expect(local.text).toMatch(/the dial itself failed \(EADDRINUSE\)/);
  });
});

/** A raw protocol client: sends lines, answers pings, collects everything the server says until it closes. */
class RawClient {
  readonly received: ServerMessage[] = [];
  readonly closed: Promise<void>;
  private readonly socket: net.Socket;
  private readonly waiters: (() => void)[] = [];

  constructor(port: number, localPort?: number) {
    this.socket = net.connect({ host: '127.0.0.1', port, ...(localPort ? { localPort } : {}) });
    const splitter = new LineSplitter();
    this.socket.setEncoding('utf8');
    this.socket.on('data', (chunk: string) => {
      for (const line of splitter.push(chunk)) {
        const decoded = decodeServerMessage(line);
        if (!decoded.ok) throw new Error(`server sent a bad line: ${line}`);
        this.received.push(decoded.message);
        if (decoded.message.type === 'ping') this.send({ v: 1, type: 'pong', id: decoded.message.id });
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
    this.send({ v: 1, type: 'register', session, auth: authToken(secret, session), name, probed: null });
  }

  async waitFor(type: ServerMessage['type']): Promise<ServerMessage> {
    for (;;) {
      const found = this.received.find((message) => message.type === type);
      if (found) return found;
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

  errorCode(): string | undefined {
    const error = this.received.find((message) => message.type === 'error');
    return error?.type === 'error' ? error.code : undefined;
  }

  destroy() {
    this.socket.destroy();
  }
}

describe('rendezvous server', () => {
  const PORT = 33410;
  let server: RendezvousServer;
  let log: string[];
  const clients: RawClient[] = [];
  const client = () => {
    const made = new RawClient(PORT);
    clients.push(made);
    return made;
  };

  beforeEach(async () => {
    log = [];
    server = await startRendezvousServer({
      host: '127.0.0.1',
      port: PORT,
      probePort: PORT + 1,
      idleTimeoutMs: 400,
      pairTimeoutMs: 800,
      log: (line) => log.push(line),
    });
  });

  afterEach(async () => {
    for (const made of clients.splice(0)) made.destroy();
    await server.close();
  });

  async function expectPaired(a: RawClient, b: RawClient) {
    const [peerOfA, peerOfB] = await Promise.all([a.waitFor('peer'), b.waitFor('peer')]);
    if (peerOfA.type !== 'peer' || peerOfB.type !== 'peer') throw new Error('not a peer message');
    expect(peerOfA.peer.name).toBe(peerOfB.self.name);
    expect(peerOfB.peer.name).toBe(peerOfA.self.name);
    expect(peerOfA.peer.endpoint.host).toBe('127.0.0.1');
    return [peerOfA, peerOfB] as const;
  }

  it('pairs two peers, sending each the other endpoint it observed', async () => {
    const a = client();
    const b = client();
    a.register('s1', 'pw', 'alice');
    b.register('s1', 'pw', 'bob');
    const [peerOfA] = await expectPaired(a, b);
    expect(peerOfA.peer.name).toBe('bob');
    expect(log.filter((line) => / paired session=s1 /.test(line))).toHaveLength(1);
  });

  it('the probe port answers with the endpoint a connection came from', async () => {
    const socket = net.connect({ host: '127.0.0.1', port: PORT + 1, localPort: 33420 });
    let text = '';
    socket.setEncoding('utf8').on('data', (chunk: string) => {
      text += chunk;
    });
    await new Promise((resolve) => socket.once('close', resolve));
    expect(decodeServerMessage(text.trim())).toEqual({
      ok: true,
      message: { v: 1, type: 'observed', endpoint: { host: '127.0.0.1', port: 33420 } },
    });
  });

  it('drops malformed, oversized, wrong-version and unauthenticated clients, and keeps serving the session', async () => {
    const waiting = client();
    waiting.register('s2', 'right', 'alice');
    await waiting.waitFor('registered');

    const garbage = client();
    garbage.send('this is not json\n');
    const huge = client();
    huge.send('x'.repeat(MAX_LINE_BYTES * 3));
    const future = client();
    future.send({ v: 99, type: 'register' });
    const intruder = client();
    intruder.register('s2', 'wrong', 'mallory');
    await Promise.all([garbage.closed, huge.closed, future.closed, intruder.closed]);
    expect(garbage.errorCode()).toBe('malformed');
    expect(huge.errorCode()).toBe('too-large');
    expect(future.errorCode()).toBe('bad-version');
    expect(intruder.errorCode()).toBe('unauthorized');

    // Alice was not disturbed: the rightful peer still pairs with her.
    const bob = client();
    bob.register('s2', 'right', 'bob');
    const [peerOfAlice] = await expectPaired(waiting, bob);
    expect(peerOfAlice.peer.name).toBe('bob');
    // One log line per event, the errors included.
    for (const code of ['malformed', 'too-large', 'bad-version', 'unauthorized'])
      expect(log.filter((line) => line.includes(` error `) && line.includes(`code=${code}`))).toHaveLength(1);
  });

  it('refuses a third peer to a full session without disturbing the pair', async () => {
    const a = client();
    const b = client();
    a.register('s3', 'pw', 'alice');
    b.register('s3', 'pw', 'bob');
    await Promise.all([a.waitFor('registered'), b.waitFor('registered')]);
    const third = client();
    third.register('s3', 'pw', 'carol');
    await third.closed;
    expect(third.errorCode()).toBe('session-full');
    await expectPaired(a, b);
  });

  it('drops an idle client and a client whose session never pairs, each with its reason', async () => {
    const idle = client();
    const lonely = client();
    lonely.register('s4', 'pw', 'alone');
    await Promise.all([idle.closed, lonely.closed]);
    expect(idle.errorCode()).toBe('idle');
    expect(lonely.errorCode()).toBe('unpaired');
    const lonelyError = lonely.received.find((message) => message.type === 'error');
    expect(lonelyError?.type === 'error' && lonelyError.message).toMatch(
      /no second peer joined session 's4'/,
    );
    // The session slot is free again afterwards.
    const a = client();
    const b = client();
    a.register('s4', 'other-secret', 'alice');
    b.register('s4', 'other-secret', 'bob');
    await expectPaired(a, b);
  });
});

describe('peer.ts --rendezvous against a real server', () => {
  it('a peer with the wrong secret exits 6 with the reason; the rightful peer keeps waiting', async () => {
    const server = runScript('rendezvous', ['--listen', '127.0.0.1:33450']);
    const common = ['--rendezvous', '127.0.0.1:33450', '--session', 'locked', '--timeout', '20s'];
    const started = [server];
    try {
      await server.waitFor(/ listening /);
      const rightful = runScript('peer', [...common, '--secret', 'right', '--local-port', '33452']);
      started.push(rightful);
      await server.waitFor(/ register client=\d+ session=locked /);
      const intruder = runScript('peer', [...common, '--secret', 'wrong', '--local-port', '33453']);
      started.push(intruder);
      expect(await intruder.exited).toBe(6);
      expect(intruder.stderr()).toMatch(
        /rendezvous server refused: wrong secret for session 'locked' \(unauthorized\)/,
      );
      // The first peer is still registered and waiting, unaffected.
      expect(rightful.process.exitCode).toBe(null);
      expect(server.stdout()).not.toMatch(/ disconnect client=1 /);
      rightful.process.kill('SIGTERM');
      expect(await rightful.exited).toBe(130);
      server.process.kill('SIGTERM');
      expect(await server.exited).toBe(0);
    } finally {
      for (const run of started) run.process.kill('SIGKILL');
    }
  });

  it('exits 6 when no rendezvous server answers', async () => {
    const run = runScript('peer', [
      '--rendezvous',
      '127.0.0.1:33460',
      '--session',
      's',
      '--secret',
      'x',
      '--local-port',
      '33465',
    ]);
    expect(await run.exited).toBe(6);
    // The probe port (server port + 1) is tried first.
    expect(run.stderr()).toMatch(/cannot reach the rendezvous server 127\.0\.0\.1:3346[01] from port 33465/);
  });
});

describe('rendezvous.ts', () => {
  it('refuses bad flags with exit 2 and a one-line reason', async () => {
    const run = runScript('rendezvous', ['--listen', 'nowhere']);
    expect(await run.exited).toBe(2);
    expect(run.stderr()).toMatch(/^rendezvous: --listen: 'nowhere' is not HOST:PORT\n/);
    const same = runScript('rendezvous', ['--listen', '127.0.0.1:33430', '--probe-port', '33430']);
    expect(await same.exited).toBe(2);
    expect(same.stderr()).toMatch(/--probe-port must differ/);
  });

  it('serves until SIGTERM, logging one line per event', async () => {
    const run = runScript('rendezvous', ['--listen', '127.0.0.1:33440', '--idle-timeout', '300ms']);
    await run.waitFor(/listening on=127\.0\.0\.1:33440 probe=127\.0\.0\.1:33441/);
    const idle = new RawClient(33440);
    await idle.closed;
    expect(idle.errorCode()).toBe('idle');
    await run.waitFor(/ error client=1 .*code=idle/);
    run.process.kill('SIGTERM');
    expect(await run.exited).toBe(0);
    expect(run.stdout()).toMatch(/stopped signal=SIGTERM/);
  });
});
