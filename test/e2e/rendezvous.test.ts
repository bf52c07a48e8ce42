/** rendezvous.ts and peer.ts --rendezvous as child processes, on ports this run owns. */
import { describe, expect, it } from 'vitest';
import { freePorts } from '../helpers/freePorts.ts';
import { RawClient } from '../helpers/rawRendezvousClient.ts';
import { runScript } from '../helpers/runScript.ts';

describe('peer.ts --rendezvous against a real server', () => {
  it('a peer with the wrong secret is never paired nor told its secret is wrong; the rightful peer keeps waiting', async () => {
    const [port, , rightfulPort, intruderPort] = (await freePorts(4)) as number[];
    const server = runScript('rendezvous', ['--listen', `127.0.0.1:${port}`]);
    const common = ['--rendezvous', `127.0.0.1:${port}`, '--session', 'locked', '--timeout', '20s'];
    const started = [server];
    try {
      await server.waitFor(/ listening /);
      const rightful = runScript('peer', [
        ...common,
        '--secret',
        'right',
        '--local-port',
        String(rightfulPort),
      ]);
      started.push(rightful);
      await server.waitFor(/ register client=\d+ session=locked /);
      const intruder = runScript('peer', [
        ...common,
        '--timeout',
        '2s',
        '--secret',
        'wrong',
        '--local-port',
        String(intruderPort),
      ]);
      started.push(intruder);
      expect(await intruder.exited).toBe(6);
      expect(intruder.stderr()).toMatch(/not paired through the rendezvous server .* within 2000 ms/);
      expect(intruder.stderr()).not.toMatch(/wrong secret/);
      // The first peer is still registered and waiting, unaffected.
      expect(rightful.process.exitCode).toBe(null);
      expect(server.stdout()).not.toMatch(/ disconnect client=1 /);
      rightful.process.kill('SIGTERM');
      expect(await rightful.exited).toBe(130);
      server.process.kill('SIGTERM');
      expect(await server.exited).toBe(130);
    } finally {
      for (const run of started) run.process.kill('SIGKILL');
    }
  });

  it('exits 6 when no rendezvous server answers', async () => {
    // Nobody listens on these: free ports of this run.
    const [port, local] = (await freePorts(2)) as [number, number];
    const run = runScript('peer', [
      '--rendezvous',
      `127.0.0.1:${port}`,
      '--session',
      's',
      '--secret',
      'x',
      '--local-port',
      String(local),
    ]);
    expect(await run.exited).toBe(6);
    // The main port is tried first: its hello names the probe port.
    expect(run.stderr()).toMatch(
      new RegExp(`cannot reach the rendezvous server 127\\.0\\.0\\.1:${port} from port ${local}`),
    );
  });
});

describe('rendezvous.ts', () => {
  it('refuses bad flags with exit 2 and a one-line reason', async () => {
    const run = runScript('rendezvous', ['--listen', 'nowhere']);
    expect(await run.exited).toBe(2);
    expect(run.stderr()).toMatch(/^rendezvous: --listen: 'nowhere' is not HOST:PORT\n/);
    // Refused before anything listens: the port is never used.
    const same = runScript('rendezvous', ['--listen', '127.0.0.1:33430', '--probe-port', '33430']);
    expect(await same.exited).toBe(2);
    expect(same.stderr()).toMatch(/--probe-port must differ/);
  });

  it('serves until SIGTERM, logging one line per event', async () => {
    const [port, probe] = (await freePorts(2)) as [number, number];
    const run = runScript('rendezvous', ['--listen', `127.0.0.1:${port}`, '--idle-timeout', '300ms']);
    await run.waitFor(new RegExp(`listening on=127\\.0\\.0\\.1:${port} probe=127\\.0\\.0\\.1:${probe}`));
    const idle = new RawClient(port);
    await idle.closed;
    expect(idle.errorCode()).toBe('idle');
    await run.waitFor(/ error client=1 .*code=idle/);
    run.process.kill('SIGTERM');
    expect(await run.exited).toBe(130);
    expect(run.stdout()).toMatch(/stopped signal=SIGTERM/);
  });
});
