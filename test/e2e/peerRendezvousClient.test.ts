/**
 * peer.ts --rendezvous as a client: --timeout is the one bound used for the whole wait, a server
 * that keeps unpaired peers for less says so, and text from the server cannot reach the terminal
 * as control characters. Host loopback, ephemeral ports.
 */
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { Child } from '../../lib/core/childProcess.ts';
import { encodeMessage, PROTOCOL_VERSION } from '../../lib/rendezvous/protocol.ts';
import { type RendezvousServer, startRendezvousServer } from '../../lib/rendezvous/server.ts';
import { controlCharacters } from '../helpers/controlCharacters.ts';
import { freePorts } from '../helpers/freePorts.ts';
import { runScript } from '../helpers/runScript.ts';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

async function server(options: { pairTimeoutMs: number }): Promise<RendezvousServer> {
  const started = await startRendezvousServer({
    host: '127.0.0.1',
    port: 0,
    probePort: 0,
    ...options,
    log: () => {},
  });
  cleanups.push(() => started.close());
  return started;
}

async function lonelyPeer(port: number, extra: string[]): Promise<Child> {
  const [localPort] = await freePorts(1);
  const run = runScript('peer', [
    '--rendezvous',
    `127.0.0.1:${port}`,
    '--session',
    'alone',
    '--secret',
    's',
    '--local-port',
    String(localPort),
    ...extra,
  ]);
  cleanups.push(() => {
    run.process.kill('SIGKILL');
  });
  return run;
}

describe('peer.ts --rendezvous timeouts', () => {
  it('--timeout is the bound used for the wait, not --timeout plus a margin', async () => {
    const { address } = await server({ pairTimeoutMs: 120_000 });
    const run = await lonelyPeer(address.port, ['--timeout', '1500ms']);
    expect(await run.exited).toBe(6);
    expect(run.stderr()).toMatch(/not paired through the rendezvous server 127\.0\.0\.1:\d+ within 1500 ms/);
    expect(run.stderr()).not.toMatch(/note: the server drops/);
  });

  it('a server that drops unpaired peers sooner than --timeout says so up front', async () => {
    const { address } = await server({ pairTimeoutMs: 1000 });
    const run = await lonelyPeer(address.port, ['--timeout', '30s']);
    expect(await run.exited).toBe(6);
    expect(run.stderr()).toContain(
      'note: the server drops a peer left unpaired after 1000 ms, sooner than our 30000 ms',
    );
    expect(run.stderr()).toMatch(
      /no second peer joined session 'alone' with the same secret within 1000 ms \(unpaired\)/,
    );
  });
});

describe('peer.ts --rendezvous and a hostile server', () => {
  it("escapes control characters in the server's error text", async () => {
    const sockets = new Set<net.Socket>();
    const hostile = net.createServer((socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => {});
      socket.write(
        encodeMessage({ v: PROTOCOL_VERSION, type: 'hello', probePort: null, pairTimeoutMs: 30_000 }),
      );
      socket.end(
        encodeMessage({
          v: PROTOCOL_VERSION,
          type: 'error',
          code: 'idle',
          message: 'x\u001b[2K\u001b[1Gforged\u0000\u0007',
        }),
      );
    });
    await new Promise<void>((resolve) => hostile.listen({ host: '127.0.0.1', port: 0 }, resolve));
    cleanups.push(
      () =>
        new Promise<void>((resolve) => {
          for (const socket of sockets) socket.destroy();
          hostile.close(() => resolve());
        }),
    );
    const run = await lonelyPeer((hostile.address() as net.AddressInfo).port, []);
    expect(await run.exited).toBe(6);
    expect(run.stderr()).toContain(
      'rendezvous server refused: x\\u001b[2K\\u001b[1Gforged\\u0000\\u0007 (idle)',
    );
    expect(controlCharacters(run.stderr())).toEqual([]);
  });
});
