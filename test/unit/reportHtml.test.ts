import { describe, expect, it } from 'vitest';
import { escapeHtml, renderPage, scriptJson } from '../../lib/report/html.ts';
import { CLASSIC_EDGES, layoutOf, renderStateDiagram } from '../../lib/report/stateDiagram.ts';
import {
  curveOnAxis,
  percentileX,
  stressReportPage,
  TIMELINE_PLOTTED,
} from '../../lib/report/stressReport.ts';
import type { ReportPage } from '../../lib/report/types.ts';
import { printResult } from '../../lib/stress/printResult.ts';
import { evaluateThresholds, parseThreshold } from '../../lib/stress/thresholds.ts';
import type { StressResult, TimelinePoint } from '../../lib/stress/types.ts';
import { TCP_STATES } from '../../lib/trace/types.ts';
import { sampleResult } from '../helpers/stressResults.ts';

/** data-edge -> data-sides of every edge drawn. */
function drawnEdges(svg: string): Record<string, number> {
  return Object.fromEntries(
    Array.from(svg.matchAll(/data-edge="([^"]+)" data-sides="(\d+)"/g), (match) => [
      (match[1] as string).replace('&gt;', '>'),
      Number(match[2]),
    ]),
  );
}

function sections(html: string): string[] {
  return Array.from(html.matchAll(/<section id="([^"]+)"/g), (match) => match[1] as string);
}

describe('the state diagram', () => {
  it('draws the 11 states and every transition of the classic diagram, none taken', () => {
    const svg = renderStateDiagram([]);
    for (const state of TCP_STATES) expect(svg).toContain(`data-state="${state}"`);
    // CLOSED is drawn twice, as in RFC 9293: where connections start, and where closes end.
    expect(svg.match(/data-state="CLOSED"/g)?.length).toBe(2);
    const edges = drawnEdges(svg);
    expect(Object.keys(edges).length).toBe(CLASSIC_EDGES.length);
    expect(Object.values(edges).every((sides) => sides === 0)).toBe(true);
    expect(edges['SYN_SENT>SYN_RECEIVED']).toBe(0);
    expect(edges['FIN_WAIT_1>CLOSING']).toBe(0);
  });

  it('puts each count on its edge, adds the transitions the classic diagram lacks, ignores none', () => {
    const svg = renderStateDiagram([
      { from: 'CLOSED', to: 'SYN_SENT', sides: 2000 },
      { from: 'SYN_SENT', to: 'SYN_RECEIVED', sides: 1000 },
      { from: 'SYN_SENT', to: 'ESTABLISHED', sides: 1000 },
      { from: 'ESTABLISHED', to: 'CLOSED', sides: 7 },
      { from: 'FIN_WAIT_2', to: 'CLOSED', sides: 3 },
    ]);
    const edges = drawnEdges(svg);
    expect(edges).toMatchObject({
      'CLOSED>SYN_SENT': 2000,
      'SYN_SENT>SYN_RECEIVED': 1000,
      'SYN_SENT>ESTABLISHED': 1000,
      'ESTABLISHED>CLOSED': 7,
      'FIN_WAIT_2>CLOSED': 3,
      'CLOSED>LISTEN': 0,
    });
    expect(Object.keys(edges).length).toBe(CLASSIC_EDGES.length + 2);
    expect(svg).toContain('>2,000</text>');
    // A reset from FIN_WAIT_2 ends in the bottom CLOSED; a failed connect returns to the top one.
    expect(layoutOf('FIN_WAIT_2', 'CLOSED').curve[3][1]).toBeGreaterThan(700);
    expect(layoutOf('SYN_SENT', 'CLOSED').curve[3][1]).toBeLessThan(100);
  });
});

describe('the page', () => {
  const page: ReportPage = {
    kind: 'stress',
    title: 'A <b>title</b>',
    subtitle: 'sub & title',
    tiles: [{ label: 'x', value: '1', figure: 'pairs.established' }],
    sections: [{ id: 'one', title: 'One', html: '<p>ok</p>' }],
    data: { kind: 'stress', plots: [], evil: '</script><script>alert(1)</script>' },
  };
  const html = renderPage(page, new Date(0));

  it('is one self-contained document that loads nothing', () => {
    expect(html.startsWith('<!doctype html>')).toBe(true);
    expect(html).toContain('<meta http-equiv="Content-Security-Policy" content="default-src &#39;none&#39;;');
    expect(html).toMatch(/uPlot/);
    expect(html).not.toMatch(/<script[^>]+src=|<link[^>]+href=|@import|url\(http/i);
    expect(html).toContain('1970-01-01 00:00:00 UTC');
  });

  it('escapes text and keeps the data block whole', () => {
    expect(html).toContain('<title>A &lt;b&gt;title&lt;/b&gt;</title>');
    expect(html).toContain('sub &amp; title');
    const block = /<script type="application\/json" id="report-data">(.*?)<\/script>/s.exec(html)?.[1] ?? '';
    expect(JSON.parse(block).evil).toBe('</script><script>alert(1)</script>');
    expect(escapeHtml(`"'<>&`)).toBe('&quot;&#39;&lt;&gt;&amp;');
    expect(scriptJson('\u2028')).toBe('"\\u2028"');
  });
});

describe('the stress page', () => {
  it('shows the open mode and the hold (peak held at once, memory per held pair) when the run had them', () => {
    const result: StressResult = {
      ...sampleResult(),
      processes: 11,
      open: { mode: 'crossed', pairsPerWave: 2273 },
      hold: {
        holdMs: 60_000,
        keepaliveMs: 10_000,
        peakOpenPairs: 100_000,
        keepalivesVerified: 1_200_000,
        rssAtStartBytes: 1_485 * 1048576,
        peakRssBytes: 1_838 * 1048576,
        rssPerHeldPairBytes: 3697,
      },
    };
    const page = stressReportPage(result, printResult(result));
    const summary = page.sections.find((section) => section.id === 'summary')?.html ?? '';
    expect(summary).toContain('<th>open</th><td>crossed (both SYNs held on the veth link');
    expect(summary).toContain('data-figure="hold.peakOpenPairs" data-value="100000"');
    expect(summary).toContain('data-figure="hold.rssPerHeldPairBytes" data-value="3697">3.61 KiB');
    expect(summary).toContain('data-figure="processes" data-value="11"');
    expect(page.tiles.find((tile) => tile.label === 'held at once')?.value).toBe('100,000');
    // A run without them has neither.
    const plain = stressReportPage(sampleResult(), '').sections[0]?.html ?? '';
    expect(plain).not.toContain('<th>hold</th>');
    expect(plain).not.toContain('<th>open</th>');
  });

  it('has the sections its result has data for, and no others', () => {
    const result = sampleResult();
    const bare = stressReportPage(result, printResult(result));
    expect(bare.sections.map((section) => section.id)).toEqual([
      'summary',
      'errors',
      'latency',
      'attempts',
      'text-report',
    ]);
    const full: StressResult = {
      ...result,
      thresholds: evaluateThresholds([parseThreshold('success>=99%')], result),
      timeline: {
        intervalMs: 25,
        points: [
          [0, 0, 0, 0],
          [25, 100, 0, 0],
          [50, 300, 1, 0],
        ],
      },
      stateEdges: {
        sides: 2,
        edges: [{ from: 'CLOSED', to: 'SYN_SENT', sides: 2 }],
        paths: [{ states: ['CLOSED', 'SYN_SENT'], sides: 2 }],
        sidesNotListed: 0,
      },
      openKinds: { 'one-sided': 1 },
      closeKinds: { active: 1, passive: 1 },
      trace: { source: 'kernel', lostEvents: 0 },
    };
    Object.assign(full, {
      agents: [{ name: 'alice', pairs: { established: 10 } }],
      links: [{ agents: ['alice', 'bob'], planned: 10, established: 10 }],
      lab: { routers: [{ name: 'alice-nat', insertFailed: 0 }] },
    });
    const ids = stressReportPage(full, '').sections.map((section) => section.id);
    expect(ids).toEqual([
      'summary',
      'errors',
      'thresholds',
      'timeline',
      'latency',
      'attempts',
      'state-diagram-section',
      'breakdown-agents',
      'breakdown-links',
      'breakdown-routers',
      'text-report',
    ]);
    const rendered = renderPage(stressReportPage(full, ''));
    expect(sections(rendered)).toEqual(ids);
    expect(rendered).toContain('<th>pairs.established</th>');
    expect(rendered).toContain('<td>alice-nat</td>');
    expect(rendered).toContain('data-figure="pairs.established" data-value="1000"');
  });

  it('draws the timeline from at most a bounded number of windows, the last at the end', () => {
    const points: TimelinePoint[] = Array.from({ length: 513 }, (_, index) => [
      index * 25,
      index * 100,
      0,
      0,
    ]);
    const page = stressReportPage({ ...sampleResult(), timeline: { intervalMs: 25, points } }, '');
    const rate = page.data.plots.find((plot) => plot.id === 'plot-timeline')?.series[0]?.points ?? [];
    expect(rate.length).toBeLessThanOrEqual(TIMELINE_PLOTTED);
    expect(rate.at(-1)).toEqual([12.8, 4000]);
  });

  it('places percentiles on the log axis, the maximum after the deepest', () => {
    expect(percentileX(0)).toBe(0);
    expect(percentileX(99)).toBeCloseTo(2);
    expect(percentileX(99.9)).toBeCloseTo(3);
    expect(
      curveOnAxis(
        [
          [0, 1],
          [90, 2],
          [100, 5],
        ],
        1.5,
      ),
    ).toEqual([
      [0, 1],
      [1, 2],
      [1.5, 5],
    ]);
    const page = stressReportPage(sampleResult(), '');
    const latency = page.data.plots.find((plot) => plot.id === 'plot-latency');
    expect(latency?.series.map((series) => series.label)).toEqual(['establish', 'whole pair']);
    const maxAt = latency?.percentileAxis?.maxAt ?? 0;
    expect(latency?.series[0]?.points.at(-1)).toEqual([maxAt, sampleResult().establishMs?.max]);
  });
});
