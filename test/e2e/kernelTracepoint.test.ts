/** The kernel tracepoint on real sockets on the host loopback, on ports this run owns. */
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { startScript } from '../../lib/core/childProcess.ts';
import { summarizeConnections } from '../../lib/trace/connectionPaths.ts';
import { instanceExists, probeTracefs, startKernelTrace } from '../../lib/trace/kernelTracepoint.ts';
import { startPairTrace } from '../../lib/trace/plannedPairTrace.ts';
import { freePorts } from '../helpers/freePorts.ts';

const tracefs = probeTracefs();
// Privileged facilities may be missing on a developer's machine, never under CI.
const skipKernel = !tracefs.ok && !process.env.CI;
if (skipKernel) console.log(`skipping kernel trace tests: ${tracefs.reason}`);
const v4 = (port: number) => ({ host: '127.0.0.1', port });

describe.skipIf(skipKernel)('kernel trace on real sockets (host loopback)', () => {
  it('traces a normal open and close, and removes its instance on stop', async () => {
    const [serverPort, clientPort] = (await freePorts(2)) as [number, number];
    const trace = startKernelTrace({
      portRange: { first: serverPort, last: clientPort },
      hosts: ['127.0.0.1'],
    });
    expect(instanceExists(trace.instance)).toBe(true);
    const server = net.createServer((socket) => socket.resume());
    await new Promise<void>((resolve) => server.listen(serverPort, '127.0.0.1', resolve));
    const client = net.connect({ host: '127.0.0.1', port: serverPort, localPort: clientPort });
    client.resume();
    await new Promise((resolve) => client.once('connect', resolve));
    client.end();
    await new Promise((resolve) => client.once('close', resolve));
    await new Promise<void>((resolve) => server.close(() => resolve()));
    // The server side's last step (LAST_ACK -> CLOSED) needs the client's final ACK: wait for it in the trace.
    await expect
      .poll(
        () => {
          trace.drain();
          return trace.events.some((e) => e.type === 'state' && e.from === 'LAST_ACK');
        },
        { timeout: 10_000, interval: 5 },
      )
      .toBe(true);
    const paths = await trace.stop();
    expect(instanceExists(trace.instance)).toBe(false);
    const summary = summarizeConnections(paths);
    expect(summary.pairs).toHaveLength(1);
    const [clientSide, serverSide] = [clientPort, serverPort].map((port) =>
      paths.find((p) => p.local.port === port && p.remote.port !== 0),
    );
    expect(clientSide?.states).toEqual([
      'CLOSED',
      'SYN_SENT',
      'ESTABLISHED',
      'FIN_WAIT_1',
      'FIN_WAIT_2',
      'TIME_WAIT',
    ]);
    expect(serverSide?.states).toEqual([
      'LISTEN',
      'SYN_RECEIVED',
      'ESTABLISHED',
      'CLOSE_WAIT',
      'LAST_ACK',
      'CLOSED',
    ]);
    expect(summary.pairs[0]?.open).toBe('not-simultaneous');
  });

  it("leaves SIGTERM to a script's own once-handler, which stops the trace", async () => {
    const ports = (await freePorts(2)).map(String);
    const child = startScript('test/fixtures/traceWithOwnSignalHandler.ts', ports, { stdin: 'ignore' });
    const line = await child.waitForLine(/tracing (simopen-\d+-\d+)/);
    const instance = /tracing (simopen-\d+-\d+)/.exec(line)?.[1] ?? '';
    expect(instanceExists(instance)).toBe(true);
    const code = await child.stop('SIGTERM');
    expect(code).toBe(0);
    expect(child.stdout()).toContain('stopped by its own handler');
    expect(instanceExists(instance)).toBe(false);
  });

  it('a listener shows up as not-simultaneous (real sockets, kernel trace)', async () => {
    const [serverPort, clientPort] = (await freePorts(2)) as [number, number];
    const trace = startPairTrace({
      portRange: { first: serverPort, last: clientPort },
      hosts: ['127.0.0.1'],
    });
    expect(trace.label.source).toBe('kernel');
    const server = net.createServer((socket) => {
      socket.resume();
      socket.on('end', () => socket.end());
    });
    await new Promise<void>((resolve) => server.listen(serverPort, '127.0.0.1', resolve));
    const client = net.connect({ host: '127.0.0.1', port: serverPort, localPort: clientPort }, () =>
      client.end(),
    );
    client.resume();
    await new Promise((resolve) => client.once('close', resolve));
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const result = await trace.stop([{ id: 5, a: v4(clientPort), b: v4(serverPort) }]);
    expect(result.kinds.get(5)?.open).toBe('not-simultaneous');
    expect(result.kinds.get(5)?.close[0]).toBe('active');
    expect(result.lostEvents).toBe(0);
  });
});
