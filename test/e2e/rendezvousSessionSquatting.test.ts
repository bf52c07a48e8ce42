/**
 * Pairing is on the session AND the secret: clients without the secret, registering the same
 * session name before, between and after the rightful peers, can neither block nor join them, and
 * the rightful peers are never told their secret is wrong. Host loopback, ephemeral ports.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Child } from '../../lib/core/childProcess.ts';
import { type RendezvousServer, startRendezvousServer } from '../../lib/rendezvous/server.ts';
import { freePorts } from '../helpers/freePorts.ts';
import { RawClient } from '../helpers/rawRendezvousClient.ts';
import { runScript } from '../helpers/runScript.ts';

let server: RendezvousServer | undefined;
const runs: Child[] = [];
const squatters: RawClient[] = [];

afterEach(async () => {
  for (const run of runs.splice(0)) run.process.kill('SIGKILL');
  for (const client of squatters.splice(0)) client.destroy();
  await server?.close();
  server = undefined;
});

describe('session squatting', () => {
  it('squatters with other secrets neither block nor join the rightful pair', async () => {
    const log: string[] = [];
    server = await startRendezvousServer({
      host: '127.0.0.1',
      port: 0,
      probePort: 0,
      pairTimeoutMs: 60_000,
      log: (line) => log.push(line),
    });
    const port = server.address.port;
    const squat = async (secret: string) => {
      const squatter = new RawClient(port);
      squatters.push(squatter);
      squatter.register('meet', secret, 'mallory');
      await squatter.waitFor('registered');
      return squatter;
    };

    // One squatter is in before anyone, as in the reported attack.
    const first = await squat('guess-1');
    const [alicePort, bobPort] = await freePorts(2);
    const common = ['--rendezvous', `127.0.0.1:${port}`, '--session', 'meet', '--secret', 'right'];
    const alice = runScript('peer', [...common, '--local-port', String(alicePort), '--prefix', 'bob> ']);
    runs.push(alice);
    await alice.waitFor(/registered for session 'meet'/);
    // Another squatter arrives between the two rightful peers.
    const between = await squat('guess-2');
    const bob = runScript('peer', [...common, '--local-port', String(bobPort), '--prefix', 'alice> ']);
    runs.push(bob);
    await Promise.all([alice.waitFor(/connected directly/), bob.waitFor(/connected directly/)]);
    // And one after: it is not a third peer of the rightful session.
    const after = await squat('guess-3');

    bob.process.stdin?.write('hi alice\n');
    await alice.waitFor(/bob> hi alice\n/);
    alice.process.stdin?.write('/quit\n');
    expect(await alice.exited).toBe(0);
    expect(await bob.exited).toBe(0);
    for (const rightful of [alice, bob]) {
      expect(rightful.stderr()).not.toMatch(/secret|refused|unauthorized/);
      expect(rightful.stderr()).not.toContain('mallory');
    }
    for (const squatter of [first, between, after]) {
      expect(squatter.has('peer')).toBe(false);
      expect(squatter.has('error')).toBe(false);
    }
    expect(log.filter((line) => / paired session=meet /.test(line))).toHaveLength(1);
  });

  it('two squatters with the same wrong secret pair with each other, not with the rightful peer', async () => {
    server = await startRendezvousServer({ host: '127.0.0.1', port: 0, probePort: null, log: () => {} });
    const port = server.address.port;
    const client = (secret: string, name: string) => {
      const made = new RawClient(port);
      squatters.push(made);
      made.register('meet', secret, name);
      return made;
    };
    const alice = client('right', 'alice');
    await alice.waitFor('registered');
    const mallory = client('wrong', 'mallory');
    const trudy = client('wrong', 'trudy');
    const peerOfMallory = await mallory.waitFor('peer');
    expect(peerOfMallory.peer.name).toBe('trudy');
    const bob = client('right', 'bob');
    const peerOfAlice = await alice.waitFor('peer');
    expect(peerOfAlice.peer.name).toBe('bob');
    expect((await trudy.waitFor('peer')).peer.name).toBe('mallory');
    expect((await bob.waitFor('peer')).peer.name).toBe('alice');
  });
});
