/** trace.ts as a child process: a command's connections on ports this run owns, usage errors, signals. */
import { describe, expect, it } from 'vitest';
import { startScript } from '../../lib/core/childProcess.ts';
import { instanceExists, probeTracefs, removeStaleInstances } from '../../lib/trace/kernelTracepoint.ts';
import { freePorts } from '../helpers/freePorts.ts';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function startTrace(args: string[]) {
  return startScript('scripts/trace.ts', args, { stdin: 'ignore' });
}

async function runTrace(args: string[]): Promise<Run> {
  const child = startTrace(args);
  const code = await child.exited;
  return { code, stdout: child.stdout(), stderr: child.stderr() };
}

/** Two free ports, and the --ports range of them. */
async function portPair(): Promise<{ first: number; second: number; range: string }> {
  const [first, second] = (await freePorts(2)) as [number, number];
  return { first, second, range: `${first}-${second}` };
}

/** A node -e program: a listener, one connection to it from a fixed port, closed by the client. */
function openAndCloseCommand(serverPort: number, clientPort: number): string {
  return `const net=require('net');const s=net.createServer(c=>{c.resume();c.on('end',()=>c.end())}).listen(${serverPort},'127.0.0.1',()=>{const c=net.connect({port:${serverPort},host:'127.0.0.1',localPort:${clientPort}},()=>c.end());c.resume();c.on('close',()=>s.close())})`;
}

const tracefs = probeTracefs();
// Privileged facilities may be missing on a developer's machine, never under CI.
const skipKernel = !tracefs.ok && !process.env.CI;
if (skipKernel) console.log(`skipping kernel trace tests: ${tracefs.reason}`);

describe('trace.ts --source sampled', () => {
  it('trace.ts --source sampled labels its output on a real connection', async () => {
    const holdMs = 1500;
    const { first: server, second: client, range } = await portPair();
    const command = `const net=require('net');const s=net.createServer(c=>c.resume()).listen(${server},'127.0.0.1',()=>{const c=net.connect({port:${server},host:'127.0.0.1',localPort:${client}},()=>setTimeout(()=>{c.end();s.close()},${holdMs}))})`;
    const run = await runTrace([
      '--source',
      'sampled',
      '--ports',
      range,
      '--',
      process.execPath,
      '-e',
      command,
    ]);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^source: SAMPLED \/proc\/net\/tcp and \/proc\/net\/tcp6 every 10 ms/);
    expect(run.stdout).toContain('exact source unavailable: sampling was asked for (--source sampled)');
    // A rerun within 60 s finds the last run's TIME_WAIT on this 4-tuple in the first sample.
    expect(run.stdout).toMatch(
      new RegExp(`127\\.0\\.0\\.1:${client} > 127\\.0\\.0\\.1:${server} {2}(CLOSED|TIME_WAIT) → ESTABLISHED`),
    );
  });
});

describe('trace.ts usage errors', () => {
  it('rejects bad input with one line and exit 2', async () => {
    for (const args of [
      ['--ports', '9-3'],
      ['--demo', 'half-open'],
      ['--source', 'guess'],
      ['--'],
      ['stray'],
    ]) {
      const run = await runTrace(args);
      expect(run.code, args.join(' ')).toBe(2);
      expect(run.stderr.split('\n')[0]).toMatch(/^trace\.ts: /);
    }
  });
});

describe.skipIf(skipKernel)('trace.ts on the kernel tracepoint (host loopback)', () => {
  it('trace.ts -- COMMAND prints one line per connection side, JSON with raw events and paths', async () => {
    const json = await portPair();
    const run = await runTrace([
      '--ports',
      json.range,
      '--host',
      '127.0.0.1',
      '--json',
      '--events',
      '--',
      process.execPath,
      '-e',
      openAndCloseCommand(json.first, json.second),
    ]);
    expect(run.code).toBe(0);
    // NDJSON: a start record, raw events (--events), path and pair records, a summary last.
    const records = run.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    const result = records[0];
    expect(result.type).toBe('start');
    expect(result.source).toBe('kernel');
    expect(instanceExists(result.instance)).toBe(false);
    expect(records.filter((record) => record.type === 'state').length).toBeGreaterThanOrEqual(12);
    const client = records.find((p) => p.type === 'path' && p.local.port === json.second);
    expect(client.states).toEqual([
      'CLOSED',
      'SYN_SENT',
      'ESTABLISHED',
      'FIN_WAIT_1',
      'FIN_WAIT_2',
      'TIME_WAIT',
    ]);
    expect(records.at(-1).openKinds['not-simultaneous']).toBe(1);

    const ports = await portPair();
    const text = await runTrace([
      '--ports',
      ports.range,
      '--confirm-time-wait',
      '--',
      process.execPath,
      '-e',
      openAndCloseCommand(ports.first, ports.second),
    ]);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain('source: kernel tracepoint sock:inet_sock_set_state');
    const side = `127\\.0\\.0\\.1:${ports.second} > 127\\.0\\.0\\.1:${ports.first}`;
    expect(text.stdout).toMatch(
      new RegExp(
        `${side} {2}CLOSED → SYN_SENT \\+\\d+µs → ESTABLISHED \\+\\d+µs → FIN_WAIT_1 \\+\\d+µs → FIN_WAIT_2 \\+\\d+µs → TIME_WAIT\\* \\+\\d+µs`,
      ),
    );
    expect(text.stdout).toContain(
      `socket table: 127.0.0.1:${ports.second} > 127.0.0.1:${ports.first} in TIME_WAIT (confirmed)`,
    );
  });

  it('removes the instance on Ctrl-C, and sweeps the instance of a killed tracer', async () => {
    const interrupted = startTrace(['--ports', (await portPair()).range]);
    const announced = await interrupted.waitForLine(/trace instance (simopen-\d+-\d+)/);
    const instance = /trace instance (simopen-\d+-\d+)/.exec(announced)?.[1] ?? '';
    expect(instanceExists(instance)).toBe(true);
    expect(await interrupted.stop('SIGINT')).toBe(0);
    expect(interrupted.stdout()).toContain('no TCP state changes seen');
    expect(instance).not.toBe('');
    expect(instanceExists(instance)).toBe(false);

    const tracer = startTrace(['--ports', (await portPair()).range]);
    const line = await tracer.waitForLine(/trace instance (simopen-\d+-\d+)/);
    const killed = /trace instance (simopen-\d+-\d+)/.exec(line)?.[1] ?? '';
    await tracer.stop('SIGKILL');
    expect(instanceExists(killed)).toBe(true);
    // Only this tracer's: the dead tracers of another run on this machine are theirs to sweep.
    expect(removeStaleInstances({ owners: [tracer.pid as number] })).toContain(killed);
    expect(instanceExists(killed)).toBe(false);
  });
});
