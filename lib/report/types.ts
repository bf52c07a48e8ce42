/**
 * The vocabulary of the HTML reports (stress.ts, lab.ts matrix and trace.ts --report): a page is a
 * header, a row of headline figures and sections, each section present only when its data is.
 * Leaf module: types only.
 */

/** Which command wrote the report. */
export type ReportKind = 'stress' | 'matrix' | 'trace';

/** A headline figure at the top of the page. */
export interface Tile {
  label: string;
  value: string;
  /** What the figure is in the result (data-figure), for readers and tests. */
  figure?: string;
  /** A short line under the value. */
  note?: string;
  tone?: 'good' | 'bad' | 'warn' | 'plain';
}

/** One section of the page: its HTML is built on the server (already escaped). */
export interface Section {
  /** The element id (anchors, tests). */
  id: string;
  title: string;
  html: string;
  /** Spans the page's width (plots, diagrams); else a half-width card. */
  wide?: boolean;
}

/** A series of one plot: [x, y] points, drawn as a line (or as bars, see PlotSpec.bars). */
export interface PlotSeries {
  label: string;
  color: string;
  points: [number, number][];
  dash?: number[];
  /** Drawn against the right-hand axis. */
  right?: boolean;
}

/** A plot the page draws with uPlot (lib/report/client/reportClient.js). */
export interface PlotSpec {
  /** The id of the element it is drawn in. */
  id: string;
  xLabel: string;
  yLabel: string;
  rightLabel?: string;
  series: PlotSeries[];
  /**
   * x is log10(1 / (1 - percentile)): ticks read 0%, 90%, 99%, ...; `maxAt` is where the maxima
   * were placed (labelled "max").
   */
  percentileAxis?: { maxAt: number };
  /** Bars with these labels at x = 0, 1, 2, ... */
  bars?: string[];
}

/** What the page's script finds in its data block. */
export interface PageData {
  kind: ReportKind;
  plots: PlotSpec[];
  /** Anything else a kind's script part needs (the trace's paths to highlight). */
  [key: string]: unknown;
}

export interface ReportPage {
  kind: ReportKind;
  title: string;
  /** One line under the title: what ran, when. */
  subtitle: string;
  tiles: Tile[];
  sections: Section[];
  data: PageData;
}
