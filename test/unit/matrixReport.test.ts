import { describe, expect, it } from 'vitest';
import { matrixRows } from '../../lib/lab/matrixRows.ts';
import type { RowSummary } from '../../lib/lab/types.ts';
import { renderPage } from '../../lib/report/html.ts';
import { aliceLabel, bobLabel, groupKey, matrixReportPage } from '../../lib/report/matrixReport.ts';

const summaries: RowSummary[] = matrixRows().map((row, index) => ({
  row,
  punches: 2,
  successes: index % 3,
  medianMs: index % 3 ? 5 : undefined,
  retriesPerPunch: 0,
  socketsPerPunch: 2,
  matches: index % 5 !== 0,
}));

describe('matrix report', () => {
  it('gives every row of the matrix a cell of its own', () => {
    const cells = summaries.map(
      (summary) => `${groupKey(summary)}|${aliceLabel(summary.row)}|${bobLabel(summary.row)}`,
    );
    expect(new Set(cells).size).toBe(summaries.length);
  });

  it('draws one cell per row, coloured by outcome, with its reason on hover', () => {
    const html = renderPage(
      matrixReportPage(summaries, {
        punches: 2,
        deadlineMs: 3000,
        retryIntervalMs: 0,
        labId: '1',
        totalRows: summaries.length,
      }),
    );
    const cells = [
      ...html.matchAll(/<td class="cell (all|some|none)[^"]*" data-row="(\d+)"[^>]*title="([^"]*)"/g),
    ];
    expect(cells.map((cell) => Number(cell[2])).sort((a, b) => a - b)).toEqual(
      summaries.map((s) => s.row.number),
    );
    for (const [, outcome, number, title] of cells) {
      const summary = summaries[Number(number) - 1] as RowSummary;
      expect(outcome).toBe(summary.successes === 0 ? 'none' : summary.successes === 2 ? 'all' : 'some');
      expect(title).toContain(`row ${number}:`);
      expect(title).toContain('why: ');
    }
  });
});
