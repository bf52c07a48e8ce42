/**
 * stress.ts --lab --hold: pairs held open through two NAT routers (each pair's two conntrack entries
 * stay ESTABLISHED for the hold), keepalives checked across the agents, the peak of pairs open at
 * once from the agents' counts, the routers' tables holding every pair at once; a hold one agent
 * cannot open refused before the lab is built. Root with ip, nft and conntrack.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { DistributedResult } from '../../lib/coordinator/types.ts';
import type { Child } from '../../lib/core/childProcess.ts';
import { openFilesLimit } from '../../lib/core/processLimits.ts';
import { labRuns, namespacesOfThisRun, skipLabTests } from '../helpers/labScope.ts';

const skip = skipLabTests('stress --lab --hold tests', { conntrack: true });

const scratch = mkdtempSync(join(tmpdir(), 'simopen-stress-lab-hold-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const runs = labRuns('stress');
function stressLab(args: string[]): Child {
  return runs.start(['--lab', 'eim:apdf:drop,eim:apdf:drop', ...args]);
}

describe.skipIf(skip)('stress.ts --lab --hold', () => {
  it('holds every pair open at once through both routers, every keepalive checked across the agents', async () => {
    const json = join(scratch, 'hold.json');
    const log = join(scratch, 'hold.ndjson');
    const run = stressLab([
      '--pairs',
      '1500',
      '--hold',
      '4s',
      '--keepalive',
      '500ms',
      '--json',
      json,
      '--log',
      log,
    ]);
    expect(await run.exited, run.stderr()).toBe(0);
    const result = JSON.parse(readFileSync(json, 'utf8')) as DistributedResult;
    expect(result.pairs).toMatchObject({ planned: 1500, established: 1500, failed: 0 });
    // Eight rounds in 4 s, each side checks all of the other's.
    expect(result.hold).toMatchObject({ holdMs: 4000, keepaliveMs: 500, keepalivesVerified: 1500 * 2 * 8 });
    expect(result.hold?.peakOpenPairs).toBe(1500);
    expect(result.hold?.rssPerHeldPairBytes).toBeGreaterThan(0);
    expect(run.stdout()).toMatch(/^ {2}hold {11}4 s each, keepalive every 0\.5 s: 1,500 pairs open at once/m);
    // Every pair's entry was in each router's table at once.
    for (const router of result.lab?.routers ?? []) expect(router.peakEntries).toBeGreaterThanOrEqual(1500);
    expect(result.lab?.routers).toHaveLength(2);
    const records = readFileSync(log, 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    expect(records.filter((record) => record.outcome === 'established')).toHaveLength(1500);
    // Each pair lasted its hold at least.
    expect(records.every((record) => record.outcome !== 'established' || record.pairUs >= 4_000_000)).toBe(
      true,
    );
    expect(namespacesOfThisRun()).toEqual([]);
  }, 120_000);

  it('refuses, before building the lab, a hold one agent cannot open', async () => {
    // Two hosts: each agent has one side of every pair, and a process as many descriptors as its limit.
    const limit = openFilesLimit() ?? 20_000;
    const run = stressLab(['--pairs', String(limit), '--hold', '10s']);
    expect(await run.exited).toBe(2);
    const pairs = limit.toLocaleString('en-US');
    expect(run.stderr()).toContain(
      `--hold: ${pairs} pairs open at once put ${pairs} sides on each of the 2 agents`,
    );
    expect(run.stderr()).not.toMatch(/building lab/);
  });
});
