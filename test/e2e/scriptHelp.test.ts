/**
 * Every option is described once, in its script's --help: each script prints its full help (every
 * flag it takes, and its exit codes) on stdout and exits 0, without touching anything else.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

const SCRIPTS: [script: string, flags: string[], exitCodes: string[]][] = [
  [
    'scripts/peer.ts',
    [
      '--local-port',
      '--local-host',
      '--timeout',
      '--retry-interval',
      '--linger',
      '--prefix',
      '--trace',
      '--rendezvous',
    ],
    ['0 done', '2 usage', '3 no peer', '4 connection reset', '5 local endpoint', '6 rendezvous', '130'],
  ],
  [
    'scripts/stress.ts',
    [
      '--pairs',
      '--duration',
      '--concurrency',
      '--rate',
      '--workers',
      '--payload',
      '--close',
      '--timeout',
      '--mode',
      '--json',
      '--log',
      '--min-success',
      '--ports',
      '--addresses',
      '--warmup',
      '--sockets',
      '--trace',
      '--quiet',
    ],
    ['0 ok', '1 success below', '2 bad usage', '3 --mode sandbox', '130 interrupted'],
  ],
  [
    'scripts/trace.ts',
    ['--ports', '--host', '--json', '--source', '--confirm-time-wait', '-- COMMAND', '--demo', '--max-tries'],
    ['0 done', '1 a demo', '2 bad usage', '3 the facility', '130 a demo', '127'],
  ],
  [
    'scripts/lab.ts',
    [
      'up [TOPOLOGY]',
      'status',
      'exec HOST',
      'down',
      'matrix',
      '--punches',
      '--deadline',
      '--retry-interval',
      '--only',
    ],
    ['0 ok', '1 failure', '2 bad usage', '3 matrix', '4 no lab', '5 no lab possible', '130 matrix'],
  ],
  [
    'scripts/rendezvous.ts',
    ['--listen', '--probe-port', '--idle-timeout', '--pair-timeout'],
    ['0 stopped by SIGTERM', '1 cannot listen', '2 bad usage', '130 stopped'],
  ],
  [
    'scripts/setup.ts',
    [
      '--check',
      'nftables',
      'util-linux',
      'iproute2',
      'socat',
      'gcc',
      'libc6-dev',
      'conntrack',
      'tcpdump',
      'chromium',
    ],
    ['0 ready', '1 an install', '2 bad usage', '3 packages missing', '130 interrupted'],
  ],
  [
    'bench/run.ts',
    [
      '--pairs',
      '--repeat',
      '--quick',
      '--skip-1m',
      '--workers',
      '--payload',
      '--close',
      '--inflight',
      '--only',
      '--json',
    ],
    ['0 every figure', '1 a figure', '2 bad usage', '130 interrupted'],
  ],
];

describe('--help', () => {
  it.each(SCRIPTS)('%s prints every option and its exit codes, exit 0', (script, flags, exitCodes) => {
    const run = spawnSync(process.execPath, ['--import', 'tsx', script, '--help'], {
      cwd: repoRoot,
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(run.status).toBe(0);
    expect(run.stderr).toBe('');
    expect(run.stdout).toMatch(/^usage: /);
    for (const flag of flags) expect(run.stdout).toContain(flag);
    const codes = run.stdout.slice(run.stdout.indexOf('exit codes:')).replace(/\s+/g, ' ');
    expect(run.stdout).toContain('exit codes:');
    for (const code of exitCodes) expect(codes).toContain(code);
  });
});
