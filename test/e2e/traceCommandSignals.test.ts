/**
 * trace.ts as a real process: SIGINT, SIGTERM and SIGHUP sent to trace.ts reach -- COMMAND, the trace
 * is printed and trace.ts exits as the command did (no command left running, no trace instance left);
 * without a command SIGHUP ends the trace with its report; --host names are resolved or refused; the
 * full --help; and as an ordinary user, the reason tracefs cannot be used is the true one.
 */
import { spawnSync } from 'node:child_process';
import { constants } from 'node:os';
import { beforeAll, describe, expect, it } from 'vitest';
import { instanceExists, probeTracefs, tracefsMounted } from '../../lib/trace/kernelTracepoint.ts';
import { freePorts } from '../helpers/freePorts.ts';
import { repoRoot, runScript } from '../helpers/runScript.ts';

const tracefs = probeTracefs();
// Privileged facilities may be missing on a developer's machine, never under CI.
const skipKernel = !tracefs.ok && !process.env.CI;
if (skipKernel) console.log(`skipping trace.ts signal tests: ${tracefs.reason}`);

/** Can user nobody make a user namespace here (to be uid 0 without being root)? */
function nobodyUserNamespace(): { ok: boolean; reason: string } {
  if (process.getuid?.() !== 0) return { ok: false, reason: 'not root: cannot run as user nobody' };
  if (!tracefsMounted()) return { ok: false, reason: 'tracefs is not mounted here' };
  const probe = spawnSync('runuser', ['-u', 'nobody', '--', 'unshare', '-r', '-n', 'true'], {
    encoding: 'utf8',
  });
  if (probe.error || probe.status !== 0)
    return {
      ok: false,
      reason: `runuser/unshare -r as nobody failed: ${probe.error?.message ?? probe.stderr}`,
    };
  return { ok: true, reason: '' };
}
const asNobody = nobodyUserNamespace();
const skipNobody = !asNobody.ok && !process.env.CI;
if (skipNobody) console.log(`skipping the ordinary-user tracefs test: ${asNobody.reason}`);

// Four consecutive ports of this run (the kernel's choice), so two runs on one machine do not share them.
let BASE = 0;
beforeAll(async () => {
  [BASE] = (await freePorts(4)) as [number];
});

/**
 * A command that opens one connection (listener on BASE, client from BASE+1), says "ready PID" on
 * stderr, keeps it open, and gives up by itself after 30 s. With a handler, SIGINT makes it exit 7.
 */
function holdingCommand(handleSigint: boolean): string[] {
  const program = [
    "const net=require('net');",
    handleSigint ? "process.on('SIGINT',()=>process.exit(7));" : '',
    `const s=net.createServer(c=>c.resume()).listen(${BASE},'127.0.0.1',()=>{`,
    `const c=net.connect({port:${BASE},host:'127.0.0.1',localPort:${BASE + 1}},()=>process.stderr.write('ready '+process.pid+'\\n'));c.resume()});`,
    'setTimeout(()=>process.exit(0),30000);',
  ].join('');
  return [process.execPath, '-e', program];
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe.skipIf(skipKernel)('trace.ts -- COMMAND and signals', () => {
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
    it(`${signal} to trace.ts reaches the command; the trace is printed; exit 128+${constants.signals[signal]}`, async () => {
      const run = runScript('trace', ['--ports', `${BASE}-${BASE + 1}`, '--', ...holdingCommand(false)]);
      await run.waitFor(/ready \d+/);
      const commandPid = Number(/ready (\d+)/.exec(run.stderr())?.[1]);
      const instance = /trace instance (simopen-\d+-\d+)/.exec(run.stderr())?.[1] ?? '';
      expect(alive(commandPid)).toBe(true);
      run.process.kill(signal);
      expect(await run.exited).toBe(128 + constants.signals[signal]);
      expect(alive(commandPid)).toBe(false);
      expect(instanceExists(instance)).toBe(false);
      // The connection the command held, closed by the kernel when the signal ended it.
      expect(run.stdout()).toMatch(
        new RegExp(
          `127\\.0\\.0\\.1:${BASE + 1} > 127\\.0\\.0\\.1:${BASE} {2}CLOSED → SYN_SENT \\+\\d+µs → ESTABLISHED`,
        ),
      );
      expect(run.stdout()).toMatch(/^summary: 1 connection \(open kinds not-simultaneous 1;/m);
    });
  }

  it('a command that handles SIGINT itself decides the exit code', async () => {
    const run = runScript('trace', [
      '--json',
      '--ports',
      `${BASE}-${BASE + 1}`,
      '--',
      ...holdingCommand(true),
    ]);
    await run.waitFor(/ready \d+/);
    run.process.kill('SIGINT');
    expect(await run.exited).toBe(7);
    const records = run
      .stdout()
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    expect(records[0]).toMatchObject({ type: 'start', command: holdingCommand(true) });
    expect(records.at(-1)).toMatchObject({ type: 'summary', pairs: 1, listeners: 1, exitCode: 7 });
  });

  it('without a command, SIGHUP ends the trace with its report (exit 0)', async () => {
    const run = runScript('trace', ['--ports', `${BASE + 2}-${BASE + 3}`]);
    await run.waitFor(/Ctrl-C to stop/);
    const instance = /trace instance (simopen-\d+-\d+)/.exec(run.stderr())?.[1] ?? '';
    run.process.kill('SIGHUP');
    expect(await run.exited).toBe(0);
    expect(run.stdout()).toMatch(/^source: kernel tracepoint/);
    expect(run.stdout()).toContain('no TCP state changes seen');
    expect(run.stdout()).toMatch(/^summary: 0 connections/m);
    expect(instanceExists(instance)).toBe(false);
  });

  it('--host localhost matches the connections of 127.0.0.1', async () => {
    const program = `const net=require('net');const s=net.createServer(c=>{c.resume();c.on('end',()=>c.end())}).listen(${BASE + 2},'127.0.0.1',()=>{const c=net.connect({port:${BASE + 2},host:'127.0.0.1',localPort:${BASE + 3}},()=>c.end());c.resume();c.on('close',()=>s.close())})`;
    const run = runScript('trace', [
      '--ports',
      `${BASE + 2}-${BASE + 3}`,
      '--host',
      'localhost',
      '--',
      process.execPath,
      '-e',
      program,
    ]);
    expect(await run.exited).toBe(0);
    expect(run.stderr()).toContain('with address 127.0.0.1');
    expect(run.stdout()).toMatch(
      new RegExp(`127\\.0\\.0\\.1:${BASE + 3} > 127\\.0\\.0\\.1:${BASE + 2} {2}CLOSED → SYN_SENT`),
    );
    expect(run.stdout()).toMatch(/^summary: 1 connection /m);
  });
});

describe('trace.ts refuses what it cannot trace, and explains itself', () => {
  it('--host that is neither an address nor a resolvable name: one line, exit 2, nothing traced', async () => {
    for (const host of ['999.1.1.1', 'nosuch.invalid']) {
      const run = runScript('trace', ['--host', host, '--', 'true']);
      expect(await run.exited, host).toBe(2);
      expect(run.stderr().split('\n')[0]).toMatch(
        new RegExp(`^trace\\.ts: --host: .*'${host.replaceAll('.', '\\.')}'`),
      );
      expect(run.stderr()).not.toContain('tracing');
      expect(run.stdout()).toBe('');
    }
  });

  it('--help: every option, the output formats and the exit codes', async () => {
    const run = runScript('trace', ['--help']);
    expect(await run.exited).toBe(0);
    const help = run.stdout();
    for (const option of [
      '--ports',
      '--host',
      '--json',
      '--events',
      '--source',
      '--confirm-time-wait',
      '--max-open',
      '--buffer-kb',
      '-- COMMAND',
      '--demo',
      '--max-tries',
    ])
      expect(help, option).toContain(`  ${option}`);
    expect(help).toMatch(/^Output/m);
    expect(help).toContain('NDJSON');
    for (const record of ['start', 'path', 'pair', 'timeWait', 'summary'])
      expect(help).toMatch(new RegExp(`^ +${record} `, 'm'));
    expect(help).toMatch(/^exit codes:/m);
    for (const code of ['0', '1', '2', '3', '130']) expect(help).toMatch(new RegExp(`^ +${code} +\\S`, 'm'));
    expect(help).toContain('128+N');
  });

  it.skipIf(skipNobody)(
    'as an ordinary user, tracefs is said to be mounted but not readable (trace.ts and stress.ts --trace)',
    () => {
      const reason = 'tracefs is mounted at /sys/kernel/tracing but this process cannot read it (EACCES)';
      const trace = spawnSync(
        'runuser',
        [
          '-u',
          'nobody',
          '--',
          'unshare',
          '-r',
          '-n',
          process.execPath,
          '--import',
          'tsx',
          'scripts/trace.ts',
          '--source',
          'kernel',
          '--',
          'true',
        ],
        { cwd: repoRoot, encoding: 'utf8' },
      );
      expect(trace.status, trace.stderr).toBe(3);
      expect(trace.stderr).toContain(reason);
      expect(trace.stderr).not.toContain('not mounted');
      const stress = spawnSync(
        'runuser',
        [
          '-u',
          'nobody',
          '--',
          process.execPath,
          '--import',
          'tsx',
          'scripts/stress.ts',
          '--trace',
          '--pairs',
          '20',
          '--warmup',
          '0',
          '--quiet',
        ],
        { cwd: repoRoot, encoding: 'utf8' },
      );
      expect(stress.status, stress.stderr).toBe(0);
      expect(stress.stdout).toContain(`exact source unavailable: ${reason}`);
    },
  );
});
