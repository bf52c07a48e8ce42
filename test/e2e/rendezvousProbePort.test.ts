/**
 * The probe port is announced, not assumed: the server's first message names it (or says there is
 * none), and peer.ts --rendezvous works with every server configuration: no probe port, a probe
 * port that is not the listen port + 1, and any free ports. Host loopback, ephemeral ports.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Child } from '../../lib/core/childProcess.ts';
import { startRendezvousServer } from '../../lib/rendezvous/server.ts';
import { freePorts } from '../helpers/freePorts.ts';
import { RawClient } from '../helpers/rawRendezvousClient.ts';
import { runScript } from '../helpers/runScript.ts';

const started: Child[] = [];
afterEach(() => {
  for (const run of started.splice(0)) run.process.kill('SIGKILL');
});

function run(script: string, args: string[]): Child {
  const made = runScript(script, args);
  started.push(made);
  return made;
}

/** rendezvous.ts on any free port; returns its ports as its log names them. */
async function startServerScript(extra: string[]) {
  const server = run('rendezvous', ['--listen', '127.0.0.1:0', ...extra]);
  const listening = / listening on=127\.0\.0\.1:(\d+) probe=(\S+)/;
  await server.waitFor(listening);
  const [, port, probe] = listening.exec(server.stdout()) ?? [];
  return { server, port: Number(port), probe: probe ?? '' };
}

/** Two peer.ts --rendezvous through the server: both connect directly and a line goes across. */
async function chatThrough(port: number, session: string) {
  const [alicePort, bobPort] = await freePorts(2);
  const common = ['--rendezvous', `127.0.0.1:${port}`, '--session', session, '--secret', 's3cret'];
  const alice = run('peer', [...common, '--local-port', String(alicePort)]);
  const bob = run('peer', [...common, '--local-port', String(bobPort)]);
  await Promise.all([alice.waitFor(/connected directly/), bob.waitFor(/connected directly/)]);
  alice.process.stdin?.write('hello bob\n/quit\n');
  await bob.waitFor(/peer> hello bob\n/);
  expect(await alice.exited).toBe(0);
  expect(await bob.exited).toBe(0);
  return { alice, bob, alicePort: alicePort ?? 0 };
}

describe('the probe port announcement', () => {
  it('the first message on the main port names the probe port, or null when there is none', async () => {
    for (const probePort of [0, null]) {
      const server = await startRendezvousServer({ host: '127.0.0.1', port: 0, probePort, log: () => {} });
      try {
        const client = new RawClient(server.address.port);
        const hello = await client.waitFor('hello');
        expect(client.received[0]).toBe(hello);
        expect(hello.probePort).toBe(server.address.probePort);
        expect(hello.probePort === null).toBe(probePort === null);
        client.destroy();
      } finally {
        await server.close();
      }
    }
  });

  it('peer.ts works with a server that has no probe port (--probe-port 0)', async () => {
    const { server, port, probe } = await startServerScript(['--probe-port', '0']);
    expect(probe).toBe('off');
    const { alice } = await chatThrough(port, 'no-probe');
    expect(alice.stderr()).toContain('the server has no probe port: NAT mappings will show as unknown');
    expect(alice.stderr()).toMatch(/\(unknown mapping, rtt/);
    expect(alice.stderr()).not.toMatch(/cannot reach/);
    expect(server.stdout()).not.toMatch(/ probe from=/);
  });

  it('peer.ts probes a probe port that is not the listen port + 1', async () => {
    const [probePort] = await freePorts(1);
    const { server, port, probe } = await startServerScript(['--probe-port', String(probePort)]);
    expect(probe).toBe(`127.0.0.1:${probePort}`);
    expect(probePort).not.toBe(port + 1);
    const { alice, alicePort } = await chatThrough(port, 'odd-probe');
    expect(alice.stderr()).toContain(
      `probe: port ${alicePort} maps to 127.0.0.1:${alicePort} towards port ${probePort}`,
    );
    expect(alice.stderr()).toMatch(/\(endpoint-independent mapping, rtt/);
    expect(server.stdout()).toContain(` probe from=127.0.0.1:${alicePort}`);
  });
});
