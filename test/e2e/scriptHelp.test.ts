/**
 * Every option is described once, in its script's --help: each script prints its full help (every
 * flag it takes, and its exit codes) on stdout and exits 0, without touching anything else; and the
 * docs quote that text as it is, not a copy that drifts.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

function help(script: string) {
  return spawnSync(process.execPath, ['--import', 'tsx', script, '--help'], {
    cwd: repoRoot,
    encoding: 'utf8',
    timeout: 30_000,
  });
}

/** Which doc quotes which script's --help. */
const QUOTED_IN: [script: string, doc: string][] = [
  ['scripts/peer.ts', 'docs/peer.md'],
  ['scripts/stress.ts', 'docs/stress.md'],
  ['scripts/trace.ts', 'docs/trace.md'],
  ['scripts/lab.ts', 'docs/lab.md'],
  ['scripts/rendezvous.ts', 'docs/lab.md'],
  ['bench/run.ts', 'docs/bench.md'],
  ['scripts/k8s.ts', 'docs/kubernetes.md'],
];

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
      '--max-line',
    ],
    ['0 done', '2 usage', '3 no peer', '4 connection reset', '5 local endpoint', '6 rendezvous', '7 ', '130'],
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
      '--lab',
      '--conntrack-events',
    ],
    [
      '0 ok',
      '1 success below',
      '2 bad usage',
      '3 --mode sandbox',
      '4 --lab',
      '5 --lab',
      '99 a --threshold',
      '130 interrupted',
    ],
  ],
  [
    'scripts/trace.ts',
    [
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
    ],
    ['0 the trace ended', '1 a demo', '2 bad usage', '3 the facility', '130 a demo', '127'],
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
    ['0 ok', '1 failure', '2 bad usage', '3 matrix', '4 no lab', '5 no lab possible', '130 interrupted'],
  ],
  [
    'scripts/k8s.ts',
    ['--agents', '--pairs', '--image', '--namespace', '--name', '--port', '--drop-early-rst', '--out'],
    ['0 written', '1 the file', '2 bad usage'],
  ],
  [
    'scripts/rendezvous.ts',
    ['--listen', '--probe-port', '--idle-timeout', '--pair-timeout'],
    ['0 stopped because stdout was closed', '1 cannot listen', '2 bad usage', '130 stopped by a signal'],
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
    const run = help(script);
    expect(run.status).toBe(0);
    expect(run.stderr).toBe('');
    expect(run.stdout).toMatch(/^usage: /);
    for (const flag of flags) expect(run.stdout).toContain(flag);
    const codes = run.stdout.slice(run.stdout.indexOf('exit codes:')).replace(/\s+/g, ' ');
    expect(run.stdout).toContain('exit codes:');
    for (const code of exitCodes) expect(codes).toContain(code);
  });
});

describe('the docs quote --help', () => {
  it.each(QUOTED_IN)('%s --help appears verbatim in %s', (script, doc) => {
    const run = help(script);
    expect(run.status).toBe(0);
    const text = readFileSync(join(repoRoot, doc), 'utf8');
    // When this fails: paste the output of `npx tsx SCRIPT --help` into the doc's quote of it.
    expect(
      text.includes(`$ npx tsx ${script} --help\n${run.stdout}\`\`\``),
      `${doc} quotes ${script} --help`,
    ).toBe(true);
  });
});
