/** The rendezvous server in this process, real sockets on the host loopback, ports this run owns. */
import net from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { decodeServerMessage, MAX_LINE_BYTES } from '../../lib/rendezvous/protocol.ts';
import { type RendezvousServer, startRendezvousServer } from '../../lib/rendezvous/server.ts';
import { freePort, freePorts } from '../helpers/freePorts.ts';
import { RawClient } from '../helpers/rawRendezvousClient.ts';

describe('rendezvous server', () => {
  let PORT = 0;
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
    [PORT] = (await freePorts(2)) as [number, number];
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
    const localPort = await freePort();
    const socket = net.connect({ host: '127.0.0.1', port: PORT + 1, localPort });
    let text = '';
    socket.setEncoding('utf8').on('data', (chunk: string) => {
      text += chunk;
    });
    await new Promise((resolve) => socket.once('close', resolve));
    expect(decodeServerMessage(text.trim())).toEqual({
      ok: true,
      message: { v: 2, type: 'observed', endpoint: { host: '127.0.0.1', port: localPort } },
    });
  });

  it('drops malformed, oversized and wrong-version clients, keeps a wrong secret apart, and keeps serving the session', async () => {
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
    await Promise.all([garbage.closed, huge.closed, future.closed, intruder.waitFor('registered')]);
    expect(garbage.errorCode()).toBe('malformed');
    expect(huge.errorCode()).toBe('too-large');
    expect(future.errorCode()).toBe('bad-version');

    // Alice was not disturbed: the rightful peer still pairs with her.
    const bob = client();
    bob.register('s2', 'right', 'bob');
    const [peerOfAlice] = await expectPaired(waiting, bob);
    expect(peerOfAlice.peer.name).toBe('bob');
    // The intruder was never paired with anyone.
    expect(intruder.received.some((message) => message.type === 'peer')).toBe(false);
    // One log line per event, the errors included.
    for (const code of ['malformed', 'too-large', 'bad-version'])
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
