/**
 * The HTML reports (--report) of stress.ts, trace.ts and lab.ts matrix, opened in a real browser:
 * the machine's headless Chromium, offline. A report must load nothing (every request is intercepted
 * and counted), log no error, show the same counts as the JSON, draw every plot, and draw the state
 * diagram's edges as the trace counted them. Thresholds (exit 99 when one fails, exit 2 for bad
 * syntax) and --compare are checked on real runs. Each report is screenshotted into the test's temp
 * dir (SIMOPEN_REPORT_SHOTS=DIR keeps them there instead).
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { Child } from '../../lib/core/childProcess.ts';
import { UsageError } from '../../lib/core/errors.ts';
import { probeLab } from '../../lib/lab/buildLab.ts';
import { runStressPlan } from '../../lib/stress/index.ts';
import type { StressResult } from '../../lib/stress/types.ts';
import { probeTracefs } from '../../lib/trace/kernelTracepoint.ts';
import { edgeKey, edgesOf } from '../../lib/trace/stateEdges.ts';
import type { TcpState } from '../../lib/trace/types.ts';
import { freePorts } from '../helpers/freePorts.ts';
import { expectNothingLeftThenClean, ownLab } from '../helpers/labScope.ts';
import {
  chromiumMissing,
  closeBrowser,
  drawnPlots,
  type OpenedReport,
  openReport,
} from '../helpers/reportBrowser.ts';
import { runScript } from '../helpers/runScript.ts';

const scratch = mkdtempSync(join(tmpdir(), 'simopen-report-test-'));
const shots = process.env.SIMOPEN_REPORT_SHOTS ?? join(scratch, 'shots');
mkdirSync(shots, { recursive: true });
afterAll(async () => {
  await closeBrowser();
  rmSync(scratch, { recursive: true, force: true });
});

const noChromium = chromiumMissing();
const skipBrowser = Boolean(noChromium) && !process.env.CI;
if (skipBrowser) console.log(`skipping report browser tests: ${noChromium}`);
const tracefs = probeTracefs();
const isRoot = process.getuid?.() === 0;
const labFacility = probeLab();

const started: Child[] = [];
const opened: OpenedReport[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((report) => report.close()));
  await Promise.all(started.splice(0).map((child) => child.stop('SIGKILL')));
});

async function run(name: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = runScript(name, args, {}, { stdin: 'ignore' });
  started.push(child);
  if (name === 'lab') ownLab(child.pid);
  const code = await child.exited;
  return { code, stdout: child.stdout(), stderr: child.stderr() };
}

async function open(file: string): Promise<OpenedReport> {
  const report = await openReport(file);
  opened.push(report);
  return report;
}

/** Nothing loaded, nothing logged, every plot drawn; the screenshot written. */
async function expectCleanPage(report: OpenedReport, shot: string): Promise<Record<string, number>> {
  expect(report.errors).toEqual([]);
  expect(report.requests).toEqual([]);
  const plots = await drawnPlots(report.page);
  expect(Object.keys(plots).length).toBeGreaterThan(0);
  for (const [id, painted] of Object.entries(plots)) expect(painted, `${id} is drawn`).toBeGreaterThan(0);
  await report.page.screenshot({ path: join(shots, shot), fullPage: true });
  return plots;
}

/** Every data-figure of the page with its exact value. */
function figures(page: Page): Promise<Record<string, string>> {
  return page.evaluate(`(() => {
    const found = {};
    for (const element of document.querySelectorAll('span[data-figure]')) found[element.dataset.figure] = element.dataset.value;
    return found;
  })()`);
}

/** The diagram's edges as drawn: FROM>TO -> sides (taken edges only). */
function drawnEdges(page: Page, diagram = '.diagram svg'): Promise<Record<string, number>> {
  return page.evaluate(`(() => {
    const found = {};
    for (const edge of document.querySelectorAll(${JSON.stringify(diagram)} + ' g.edge')) {
      const sides = Number(edge.dataset.sides);
      if (sides > 0) found[edge.dataset.edge] = (found[edge.dataset.edge] ?? 0) + sides;
    }
    return found;
  })()`);
}

/** These attributes of every element the selector finds (the browser's code as text: no DOM types here). */
function attributes(page: Page, selector: string, names: string[]): Promise<string[][]> {
  return page.evaluate(
    `[...document.querySelectorAll(${JSON.stringify(selector)})].map((element) => ${JSON.stringify(names)}.map((name) => element.getAttribute(name) ?? ''))`,
  );
}

function valueAt(result: unknown, path: string): unknown {
  return path
    .split('.')
    .reduce<unknown>((value, key) => (value as Record<string, unknown> | undefined)?.[key], result);
}

describe.skipIf(skipBrowser)('stress.ts --report', () => {
  const first = { html: join(scratch, 'stress.html'), json: join(scratch, 'stress.json') };

  it('stress --trace --report: the page equals the JSON, every plot drawn, the diagram as the trace counted, thresholds passed', async () => {
    const result = await run('stress', [
      '--pairs',
      '600',
      '--workers',
      '2',
      '--warmup',
      '0',
      '--trace',
      '--quiet',
      '--report',
      first.html,
      '--json',
      first.json,
      '--threshold',
      'success>=50%',
      '--threshold',
      'establish.p99 < 60s',
    ]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/thresholds\s+2 of 2 passed/);
    const json = JSON.parse(readFileSync(first.json, 'utf8')) as StressResult;
    expect(json.thresholds?.map((threshold) => threshold.pass)).toEqual([true, true]);
    expect(json.timeline?.points.length).toBeGreaterThan(0);

    const report = await open(first.html);
    const plots = await expectCleanPage(report, 'stress.png');
    expect(Object.keys(plots)).toEqual(
      expect.arrayContaining(['plot-timeline', 'plot-latency', 'plot-attempts', 'state-diagram']),
    );
    // Every figure shown is the JSON's own number.
    const shown = await figures(report.page);
    for (const name of [
      'pairs.planned',
      'pairs.established',
      'pairs.failed',
      'pairs.cancelled',
      'pairs.notStarted',
      'pairsPerSec',
      'durationMs',
      'successPct',
      'bytesVerified',
      'establishMs.p99',
      'pairMs.p50',
      'peakRssBytes',
    ])
      expect(Number(shown[name]), name).toBe(valueAt(json, name));
    // The page also carries the result itself.
    const data = JSON.parse((await report.page.locator('#report-data').textContent()) ?? '{}') as {
      result: StressResult;
    };
    expect(data.result.pairs).toEqual(json.pairs);
    const thresholds = await attributes(report.page, 'tr[data-threshold]', ['data-threshold', 'data-pass']);
    expect(thresholds).toEqual([
      ['success>=50%', 'true'],
      ['establish.p99 < 60s', 'true'],
    ]);

    // The diagram's edges: exactly the JSON's, and as the kinds say.
    const edges = await drawnEdges(report.page);
    const stateEdges = json.stateEdges;
    if (!stateEdges) throw new Error('no stateEdges in the JSON');
    expect(edges).toEqual(
      Object.fromEntries(stateEdges.edges.map((edge) => [edgeKey(edge.from, edge.to), edge.sides])),
    );
    const opens = json.openKinds ?? {};
    const close = json.closeKinds ?? {};
    const edge = (from: TcpState, to: TcpState) => edges[edgeKey(from, to)] ?? 0;
    expect(edge('SYN_SENT', 'SYN_RECEIVED')).toBe(2 * (opens.crossed ?? 0) + (opens['one-sided'] ?? 0));
    expect(edge('SYN_SENT', 'ESTABLISHED')).toBe(opens['one-sided'] ?? 0);
    expect(edge('ESTABLISHED', 'CLOSE_WAIT')).toBe(close.passive ?? 0);
    expect(edge('FIN_WAIT_1', 'CLOSING')).toBe(close.simultaneous ?? 0);
    expect(edge('ESTABLISHED', 'FIN_WAIT_1')).toBe((close.active ?? 0) + (close.simultaneous ?? 0));
    expect(edge('CLOSED', 'SYN_SENT')).toBe(2 * json.pairs.established);
  });

  it('a failed threshold exits 99 and the report says FAIL; --compare puts both runs in the text, the JSON and one latency plot', async () => {
    const html = join(scratch, 'compare.html');
    const json = join(scratch, 'compare.json');
    const result = await run('stress', [
      '--pairs',
      '400',
      '--workers',
      '2',
      '--warmup',
      '0',
      '--quiet',
      '--report',
      html,
      '--json',
      json,
      '--compare',
      first.json,
      '--threshold',
      'establish.p50<1us',
      '--threshold',
      'established>=1',
    ]);
    expect(result.code, result.stderr).toBe(99);
    expect(result.stderr).toMatch(/stress: 1 threshold failed: establish\.p50<1us/);
    expect(result.stdout).toMatch(/FAIL\s+establish\.p50<1us/);
    expect(result.stdout).toMatch(/compared with/);
    const saved = JSON.parse(readFileSync(json, 'utf8')) as StressResult;
    expect(saved.thresholds?.map((threshold) => [threshold.text, threshold.pass])).toEqual([
      ['establish.p50<1us', false],
      ['established>=1', true],
    ]);
    const old = JSON.parse(readFileSync(first.json, 'utf8')) as StressResult;
    const planned = saved.comparison?.figures.find((row) => row.figure === 'planned');
    expect([planned?.old, planned?.new]).toEqual([old.pairs.planned, saved.pairs.planned]);

    const report = await open(html);
    await expectCleanPage(report, 'stress-compare.png');
    expect(await report.page.locator('tr[data-threshold][data-pass="false"]').count()).toBe(1);
    expect(await report.page.locator('tr[data-compared]').count()).toBe(saved.comparison?.figures.length);
    // Both runs' curves in the one latency plot (a uPlot legend entry per series).
    const legend = await report.page.locator('#plot-latency .u-legend .u-series').allTextContents();
    expect(legend.filter((text) => /\(before\)/.test(text)).length).toBeGreaterThan(0);
  });

  it('an interrupted run still writes its report: partial, every pair accounted for, as the JSON has it', async () => {
    const html = join(scratch, 'interrupted.html');
    const json = join(scratch, 'interrupted.json');
    const child = runScript(
      'stress',
      ['--pairs', '1M', '--warmup', '0', '--report', html, '--json', json],
      {},
      { stdin: 'ignore' },
    );
    started.push(child);
    // Progress lines say pairs are running.
    await expect
      .poll(() => /\d+ pairs\/s/.test(child.stderr()), { timeout: 60_000, interval: 100 })
      .toBe(true);
    expect(await child.stop('SIGINT')).toBe(130);
    const saved = JSON.parse(readFileSync(json, 'utf8')) as StressResult;
    expect(saved.interrupted).toBe(true);
    const report = await open(html);
    await expectCleanPage(report, 'stress-interrupted.png');
    expect(await report.page.title()).toMatch(/\(interrupted, partial\)$/);
    const shown = await figures(report.page);
    for (const name of [
      'pairs.planned',
      'pairs.established',
      'pairs.cancelled',
      'pairs.notStarted',
      'pairs.failed',
    ])
      expect(Number(shown[name]), name).toBe(valueAt(saved, name));
  });

  it('bad threshold syntax and an --compare that is not a stress JSON are usage errors before the run', async () => {
    for (const [args, message] of [
      [['--threshold', 'p99<5ms'], /--threshold 'p99<5ms': unknown metric/],
      [['--threshold', 'rate>>1'], /not METRIC OP VALUE/],
      [['--compare', join(scratch, '..', 'package.json')], /--compare: /],
    ] as const) {
      const report = join(scratch, 'never.html');
      const result = await run('stress', ['--pairs', '10', '--report', report, ...args]);
      expect(result.code, args.join(' ')).toBe(2);
      // One line naming the problem (then the usage line, as for every usage error).
      const [first, ...rest] = result.stderr.trim().split('\n');
      expect(first).toMatch(message);
      expect(rest.join('\n')).toMatch(/^usage: stress\.ts /);
      expect(result.stdout).toBe('');
    }
  });
});

describe.skipIf(skipBrowser)('runStressPlan with report, thresholds and compare', () => {
  it('writes the report, lists the thresholds and compares, as stress.ts does; a bad threshold throws before the run', async () => {
    const html = join(scratch, 'api.html');
    const result = await runStressPlan({
      mode: 'race',
      pairs: 20,
      report: html,
      thresholds: ['established>=1', 'failed<0'],
      compare: join(scratch, 'stress.json'),
    });
    expect(result.thresholds?.map((threshold) => threshold.pass)).toEqual([true, false]);
    expect(result.comparison?.figures.length).toBeGreaterThan(0);
    const report = await open(html);
    await expectCleanPage(report, 'api.png');
    expect(Number((await figures(report.page))['pairs.planned'])).toBe(20);
    await expect(runStressPlan({ mode: 'race', pairs: 20, thresholds: ['p99<1ms'] })).rejects.toThrow(
      UsageError,
    );
  });
});

describe.skipIf(skipBrowser || (!tracefs.ok && !process.env.CI))('trace.ts --report', () => {
  it('every path on the diagram as the NDJSON path records count them; a connection drawn on a click', async () => {
    const [server, ...clients] = (await freePorts(4)) as [number, number, number, number];
    const command = `const net=require('net');const s=net.createServer(c=>{c.resume();c.on('end',()=>c.end())}).listen(${server},'127.0.0.1',async()=>{for(const p of ${JSON.stringify(clients)}){await new Promise(r=>{const c=net.connect({port:${server},host:'127.0.0.1',localPort:p},()=>c.end());c.resume();c.on('close',r)})}s.close()})`;
    const html = join(scratch, 'trace.html');
    const ports = [server, ...clients];
    const result = await run('trace', [
      '--ports',
      `${Math.min(...ports)}-${Math.max(...ports)}`,
      '--json',
      '--report',
      html,
      '--',
      process.execPath,
      '-e',
      command,
    ]);
    expect(result.code, result.stderr).toBe(0);
    const records = result.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { type: string; states?: TcpState[]; pairs?: number });
    const summary = records.find((record) => record.type === 'summary') as unknown as {
      pairs: number;
      paths: number;
    };
    expect(summary.pairs).toBe(3);
    const counted: Record<string, number> = {};
    for (const record of records)
      if (record.type === 'path' && record.states)
        for (const [from, to] of edgesOf(record.states))
          counted[edgeKey(from, to)] = (counted[edgeKey(from, to)] ?? 0) + 1;

    const report = await open(html);
    await expectCleanPage(report, 'trace.png');
    const shown = await figures(report.page);
    expect(Number(shown.connections)).toBe(summary.pairs);
    expect(Number(shown.paths)).toBe(summary.paths);
    expect(await drawnEdges(report.page)).toEqual(counted);
    // A click on the first connection draws its two sides.
    await report.page.locator('#connections tr.pick').first().click();
    await report.page.screenshot({ path: join(shots, 'trace-picked.png'), fullPage: true });
    expect(await report.page.locator('.diagram svg .edge.hl-a').count()).toBeGreaterThan(0);
    expect(await report.page.locator('.diagram svg .edge.hl-b').count()).toBeGreaterThan(0);
  });
});

describe.skipIf(skipBrowser || (!(labFacility.ok && isRoot) && !process.env.CI))(
  'lab.ts matrix --report',
  () => {
    afterEach(() => expectNothingLeftThenClean());

    it('the matrix as a grid: a cell per row, coloured by outcome, its reason on hover', async () => {
      const html = join(scratch, 'matrix.html');
      const result = await run('lab', ['matrix', '--rows', '1,2,5,6', '--punches', '1', '--report', html]);
      expect([0, 3], result.stderr).toContain(result.code);
      const report = await open(html);
      expect(report.errors).toEqual([]);
      expect(report.requests).toEqual([]);
      await report.page.screenshot({ path: join(shots, 'matrix.png'), fullPage: true });
      const cells = await attributes(report.page, 'td.cell[data-row]', ['data-row', 'data-outcome', 'title']);
      expect(cells.map(([row]) => Number(row)).sort()).toEqual([1, 2, 5, 6]);
      for (const [row, outcome, title] of cells) {
        const line = result.stdout.split('\n').find((text) => new RegExp(`^\\| ${row} `).test(text)) ?? '';
        const [successes, punches] = (line.match(/\| (\d+)\/(\d+) /)?.slice(1) ?? []).map(Number);
        expect(outcome).toBe(successes === 0 ? 'none' : successes === punches ? 'all' : 'some');
        expect(title).toMatch(/why: /);
      }
      const first = report.page.locator('td.cell[data-row]').first();
      await first.hover();
      expect(await report.page.locator('#cell-detail').textContent()).toBe(await first.getAttribute('title'));
    });
  },
);
