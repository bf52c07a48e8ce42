/**
 * stress.ts --lab as a child process: agents in lab hosts behind real NAT routers (nftables NAT,
 * conntrack), the coordinator in the lab's management namespace, the merged report and JSON, the
 * routers' conntrack figures; a run through an EDM router that fails as the NAT matrix predicts; an
 * agent killed mid-run; SIGINT at the coordinator; an agent that cannot start. Needs root with ip,
 * nft and conntrack. Each run's lab id is the pid of its stress.ts, which this run owns (labScope.ts).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FAIL_START_ENV } from '../../lib/agent/agentServer.ts';
import { CONNTRACK_SAMPLE_EVERY } from '../../lib/coordinator/labOptions.ts';
import type { DistributedResult } from '../../lib/coordinator/types.ts';
import type { Child } from '../../lib/core/childProcess.ts';
import { labRuns, namespacesOfThisRun, skipLabTests } from '../helpers/labScope.ts';

const skip = skipLabTests('stress --lab tests', { conntrack: true });

const scratch = mkdtempSync(join(tmpdir(), 'simopen-stress-lab-test-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const runs = labRuns('stress');

/** stress.ts --lab TOPOLOGY ...; its pid is its lab's id, which is this run's. */
function stressLab(topology: string, args: string[], env: Record<string, string> = {}): Child {
  return runs.start(['--lab', topology, ...args], env);
}

function readJson(path: string): DistributedResult {
  return JSON.parse(readFileSync(path, 'utf8')) as DistributedResult;
}

interface LogRecord {
  id?: number;
  ids?: [number, number][];
  outcome?: string;
  error?: string | null;
  agents?: [string, string];
  mapped?: [string, string];
}

function readLog(path: string): LogRecord[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as LogRecord);
}

/** Every pair id 0..planned-1 appears in the log exactly once (a record, or a not-started range). */
function expectEveryPairLogged(records: LogRecord[], planned: number): void {
  const seen = new Uint8Array(planned);
  for (const record of records) {
    if (record.id !== undefined) seen[record.id] = (seen[record.id] ?? 0) + 1;
    for (const [first, last] of record.ids ?? [])
      for (let id = first; id <= last; id += 1) seen[id] = (seen[id] ?? 0) + 1;
  }
  expect(seen.every((count) => count === 1)).toBe(true);
}

function expectAccounted(result: DistributedResult): void {
  const { planned, established, failed, cancelled, notStarted } = result.pairs;
  expect(established + failed + cancelled + notStarted).toBe(planned);
}

/** Each router's conntrack figures are there and plausible for this many pairs through it. */
function expectConntrackPlausible(result: DistributedResult, routers: number, pairsThrough: number): void {
  const lab = result.lab;
  expect(lab).toBeDefined();
  expect(lab?.kernel).toMatch(/^\d+\.\d+/);
  expect(lab?.routers).toHaveLength(routers);
  for (const router of lab?.routers ?? []) {
    const insertFailed = router.after.insert_failed - router.before.insert_failed;
    const dropped = router.after.drop - router.before.drop;
    if (router.behaviour.includes(':eif:')) {
      // Endpoint-independent filtering lets the peer's SYN in by the mapping the host's own SYN just
      // made: on two CPUs the two can race their entries to the table, and the later insert fails
      // (that SYN is dropped and sent again). Rare, and reported: the test bounds it.
      expect(insertFailed, router.name).toBeLessThanOrEqual(Math.ceil(pairsThrough / 100));
      expect(dropped, router.name).toBeLessThanOrEqual(Math.ceil(pairsThrough / 100));
    } else {
      expect(insertFailed, router.name).toBe(0);
      expect(dropped, router.name).toBe(0);
    }
    expect(router.after.early_drop - router.before.early_drop).toBe(0);
    expect(router.maxEntries).toBeGreaterThan(0);
    expect(router.peakEntries).toBeGreaterThan(0);
    expect(router.peakEntries).toBeLessThanOrEqual(router.maxEntries);
    // New entries and ports are counted in the kernel, for every entry: each of the host's pairs made one.
    expect(router.newFromLan).toBeGreaterThan(0);
    expect(router.newFromLan).toBeLessThanOrEqual(pairsThrough);
    expect(router.portPreserved).toBe(router.newFromLan);
    expect(router.portChanged).toBe(0);
    // The events of every Nth new entry (numgen in the kernel: the 1st, the N+1th, ...) are watched.
    expect(router.sampleEvery).toBe(CONNTRACK_SAMPLE_EVERY);
    expect(router.entriesWatched).toBe(
      Math.ceil((router.newFromLan + router.newFromWan) / CONNTRACK_SAMPLE_EVERY),
    );
    // Events may be lost under load (then the counts are lower bounds); never more than happened.
    expect(router.statesSeen.ESTABLISHED ?? 0).toBeGreaterThan(0);
    expect(router.statesSeen.ESTABLISHED ?? 0).toBeLessThanOrEqual(router.entriesWatched);
    expect(router.statesSeen.SYN_SENT ?? 0).toBeLessThanOrEqual(router.entriesWatched);
    expect(router.timeouts.time_wait).toBeGreaterThan(0);
  }
}

describe.skipIf(skip)('stress.ts --lab', () => {
  it('two agents behind EIM routers: every pair established through both routers, merged report, conntrack figures', async () => {
    const json = join(scratch, 'two.json');
    const log = join(scratch, 'two.ndjson');
    const html = join(scratch, 'two.html');
    const run = stressLab('eim:apdf:drop,eim:apdf:drop', [
      '--pairs',
      '3000',
      '--json',
      json,
      '--log',
      log,
      '--report',
      html,
      '--threshold',
      'success>=100%',
    ]);
    expect(await run.exited).toBe(0);
    const report = run.stdout();
    expect(report).toMatch(/pairs +planned 3,000 +established 3,000 \(100\.00%\)/);
    expect(report).toMatch(/alice-nat +eim:apdf:drop +entries: peak [\d,]+ of nf_conntrack_max/);
    expect(report).toMatch(/conntrack -S +found/);
    expect(report).toMatch(
      /alice -> bob +planned 3,000 +established 3,000 +failed 0; NAT matrix expects all to connect: matches/,
    );
    const result = readJson(json);
    expect(result.mode).toBe('lab');
    expect(result.pairs).toMatchObject({ planned: 3000, established: 3000, failed: 0 });
    expect(result.agents.map((agent) => agent.name)).toEqual(['alice', 'bob']);
    for (const agent of result.agents) expect(agent.sides?.established).toBe(3000);
    expectConntrackPlausible(result, 2, 3000);
    // The HTML report and the thresholds work as in a local run, with the agents, links and routers.
    expect(result.thresholds).toEqual([expect.objectContaining({ text: 'success>=100%', pass: true })]);
    expect(result.timeline?.points.at(-1)?.[1]).toBe(3000);
    const page = readFileSync(html, 'utf8');
    for (const id of [
      'summary',
      'timeline',
      'latency',
      'breakdown-agents',
      'breakdown-links',
      'breakdown-routers',
    ])
      expect(page, id).toContain(`id="${id}"`);
    expect(page).toContain('<td>alice-nat</td>');
    const records = readLog(log);
    expect(records).toHaveLength(3000);
    expectEveryPairLogged(records, 3000);
    for (const record of records.slice(0, 50)) {
      expect(record.outcome).toBe('established');
      expect(record.agents).toEqual(['alice', 'bob']);
      // Each side dialled its peer's public mapped endpoint: the peer router's WAN address.
      expect(record.mapped?.[0]).toMatch(/^203\.0\.113\.1:\d+$/);
      expect(record.mapped?.[1]).toMatch(/^203\.0\.113\.2:\d+$/);
    }
  }, 120_000);

  it('four agents: pairs on all six links, every one established, four routers reported', async () => {
    const json = join(scratch, 'four.json');
    const run = stressLab('eim:apdf:drop,eim:apdf:drop,eim:eif:drop,eim:apdf:drop', [
      '--pairs',
      '2400',
      '--json',
      json,
    ]);
    expect(await run.exited).toBe(0);
    const result = readJson(json);
    expect(result.pairs).toMatchObject({ planned: 2400, established: 2400, failed: 0 });
    expect(result.agents).toHaveLength(4);
    expect(result.links).toHaveLength(6);
    for (const link of result.links) {
      expect(link.established).toBeGreaterThan(0);
      expect(link.matches).toBe(true);
    }
    // Each host is on three of the six links: about half the pairs cross each router.
    expectConntrackPlausible(result, 4, 2400);
  }, 120_000);

  it('--conntrack-events all: every entry watched, each one counted once per state it entered', async () => {
    const json = join(scratch, 'all-events.json');
    // --rate keeps the event stream far below what the listener takes: nothing is lost.
    const run = stressLab('eim:apdf:drop,eim:apdf:drop', [
      '--pairs',
      '300',
      '--rate',
      '300',
      '--conntrack-events',
      'all',
      '--json',
      json,
    ]);
    expect(await run.exited).toBe(0);
    expect(run.stdout()).toMatch(/states entered SYN_SENT (29[7-9]|300), .*\(of every entry, 300\)/);
    const result = readJson(json);
    expect(result.pairs).toMatchObject({ planned: 300, established: 300 });
    for (const router of result.lab?.routers ?? []) {
      expect(router).toMatchObject({
        sampleEvery: 1,
        entriesWatched: 300,
        newFromLan: 300,
        eventsLost: false,
      });
      // Every entry opened with a SYN; a state left again within a moment may show in no event. On a
      // loaded machine one entry's events were once missing without the kernel reporting a loss
      // (cause not pinned down): at most 1 in 100 may be.
      expect(router.statesSeen.SYN_SENT ?? 0).toBeGreaterThanOrEqual(297);
      expect(router.statesSeen.SYN_SENT ?? 0).toBeLessThanOrEqual(300);
      expect(router.statesSeen.ESTABLISHED ?? 0).toBeGreaterThan(0);
      expect(router.statesSeen.ESTABLISHED ?? 0).toBeLessThanOrEqual(300);
    }
    expect(result.lab?.routers).toHaveLength(2);
  }, 120_000);

  it('--conntrack-events off: no event stream, said so in the report; entries, ports and conntrack -S still counted', async () => {
    const json = join(scratch, 'no-events.json');
    const run = stressLab('eim:apdf:drop,eim:apdf:drop', [
      '--pairs',
      '1000',
      '--conntrack-events',
      'off',
      '--json',
      json,
    ]);
    expect(await run.exited).toBe(0);
    expect(run.stdout()).toMatch(/states +not watched \(--conntrack-events off\)/);
    expect(run.stdout()).toMatch(/NAT +port preserved 1,000 \(100\.00%\), changed 0 \(port clashes\)/);
    const result = readJson(json);
    expect(result.pairs).toMatchObject({ planned: 1000, established: 1000 });
    for (const router of result.lab?.routers ?? []) {
      expect(router.eventsWatched).toBe(false);
      expect(router.statesSeen).toEqual({});
      expect(router.entriesWatched).toBe(0);
      expect(router).toMatchObject({ newFromLan: 1000, newFromWan: 0, portPreserved: 1000, portChanged: 0 });
      expect(router.peakEntries).toBeGreaterThan(0);
      expect(router.after.insert_failed - router.before.insert_failed).toBe(0);
    }
    expect(result.lab?.routers).toHaveLength(2);
  }, 120_000);

  it('through an EDM router: no pair connects, as the NAT matrix predicts, every pair accounted for with its reason', async () => {
    const json = join(scratch, 'edm.json');
    const log = join(scratch, 'edm.ndjson');
    const run = stressLab('eim:apdf:drop,edm:apdf:drop', [
      '--pairs',
      '40',
      '--timeout',
      '2s',
      '--json',
      json,
      '--log',
      log,
    ]);
    expect(await run.exited).toBe(1);
    expect(run.stderr()).toMatch(/0% of pairs established, below --min-success/);
    expect(run.stdout()).toMatch(/NAT matrix expects none to connect: matches/);
    const result = readJson(json);
    expect(result.pairs).toMatchObject({ planned: 40, established: 0, failed: 40 });
    expect(result.errors).toEqual({ EPAIRTIMEOUT: 40 });
    expect(result.links[0]).toMatchObject({ expect: 'none', matches: true });
    // The EDM router mapped every connection to another port (random by design).
    const edm = result.lab?.routers.find((router) => router.name === 'bob-nat');
    // One new entry per pair in each router, counted once although its SYN was retransmitted.
    expect(edm).toMatchObject({ newFromLan: 40, newFromWan: 0, portPreserved: 0, portChanged: 40 });
    const eim = result.lab?.routers.find((router) => router.name === 'alice-nat');
    expect(eim).toMatchObject({ newFromLan: 40, portPreserved: 40, portChanged: 0 });
    const records = readLog(log);
    expectEveryPairLogged(records, 40);
    for (const record of records) expect(record).toMatchObject({ outcome: 'failed', error: 'EPAIRTIMEOUT' });
  }, 120_000);

  it('an agent killed mid-run: its pairs fail as agent-lost, the report names it, the other link finishes, nothing left', async () => {
    const json = join(scratch, 'killed.json');
    const log = join(scratch, 'killed.ndjson');
    const run = stressLab('eim:apdf:drop,eim:apdf:drop,eim:apdf:drop', [
      '--pairs',
      '9000',
      '--rate',
      '3000',
      '--json',
      json,
      '--log',
      log,
    ]);
    await run.waitForLine(/pairs start now/, 90_000);
    await new Promise((resolve) => setTimeout(resolve, 800));
    const namespace = `simopen-lab-${run.pid}-carol`;
    const pids = spawnSync('ip', ['netns', 'pids', namespace], { encoding: 'utf8' })
      .stdout.split('\n')
      .filter(Boolean)
      .map(Number);
    expect(pids.length).toBeGreaterThan(0);
    for (const pid of pids) process.kill(pid, 'SIGKILL');
    expect(await run.exited).toBe(1);
    expect(run.stderr()).toMatch(/stress: agent carol lost \(/);
    expect(run.stderr()).toMatch(/stress: agent carol was lost: /);
    const result = readJson(json);
    expectAccounted(result);
    expect(result.pairs.planned).toBe(9000);
    const carol = result.agents.find((agent) => agent.name === 'carol');
    expect(carol?.lost?.reason).toBeTruthy();
    expect(result.errors['agent-lost']).toBeGreaterThan(0);
    // alice <-> bob does not involve carol: it finishes, every pair on it established.
    const untouched = result.links.find((link) => !link.agents.includes('carol'));
    expect(untouched?.established).toBe(untouched?.planned);
    expect(untouched?.failed).toBe(0);
    expect(untouched?.matches).toBe(true);
    for (const link of result.links.filter((entry) => entry.agents.includes('carol')))
      expect(link.notJudged).toBe('agent carol lost');
    expectEveryPairLogged(readLog(log), 9000);
    expect(namespacesOfThisRun()).toEqual([]);
  }, 120_000);

  it('SIGINT at the coordinator: the agents stop, a partial merged report, exit 130, nothing left', async () => {
    const json = join(scratch, 'interrupted.json');
    const run = stressLab('eim:apdf:drop,eim:apdf:drop', [
      '--pairs',
      '60000',
      '--rate',
      '2000',
      '--json',
      json,
    ]);
    await run.waitForLine(/pairs start now/, 90_000);
    await new Promise((resolve) => setTimeout(resolve, 500));
    process.kill(run.pid as number, 'SIGINT');
    expect(await run.exited).toBe(130);
    expect(run.stdout()).toMatch(/simopen stress: INTERRUPTED, partial report/);
    const result = readJson(json);
    expect(result.interrupted).toBe(true);
    expectAccounted(result);
    expect(result.pairs.notStarted).toBeGreaterThan(0);
    expect(result.pairs.established).toBeGreaterThan(0);
  }, 120_000);

  it('an agent that cannot start: exit 4 naming it and the reason, before any pair', async () => {
    const run = stressLab('eim:apdf:drop,eim:apdf:drop', ['--pairs', '100'], { [FAIL_START_ENV]: 'bob' });
    expect(await run.exited).toBe(4);
    expect(run.stderr()).toMatch(/agent bob: could not start \(exit 1\): .*simulated start failure/);
    expect(run.stderr()).not.toMatch(/pairs start now/);
    expect(run.stdout()).toBe('');
  }, 120_000);

  it('refuses flags of a local run, and a topology of one host, before building anything', async () => {
    const mode = stressLab('eim:apdf:drop,eim:apdf:drop', ['--mode', 'race']);
    expect(await mode.exited).toBe(2);
    expect(mode.stderr()).toMatch(/--mode does not go with --lab/);
    const one = stressLab('eim:apdf:drop', []);
    expect(await one.exited).toBe(2);
    expect(one.stderr()).toMatch(/--lab: 2 to 6 routers/);
  }, 60_000);
});
