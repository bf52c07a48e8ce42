/*
 * The report page's script (inlined into each report by lib/report/html.ts). It draws the plots the
 * page's data block describes (PlotSpec, lib/report/types.ts) with uPlot, and lets a row of a paths
 * table highlight its path on the state diagram. Plain browser JavaScript, no modules, no network.
 */
(() => {
  const data = JSON.parse(document.getElementById('report-data').textContent);
  const number = (value, digits = 3) =>
    value === null || value === undefined
      ? '-'
      : Number(value).toLocaleString('en-US', { maximumFractionDigits: digits });

  /** Axis ticks: 2.5M rather than 2,500,000, so that the labels fit beside the plot. */
  const tick = (value) =>
    Math.abs(value) >= 100_000
      ? value.toLocaleString('en-US', { notation: 'compact', maximumFractionDigits: 2 })
      : value.toLocaleString('en-US', { maximumFractionDigits: 3 });

  /** x = log10(1 / (1 - percentile)) back to "99.9%". */
  function percentileText(x, maxAt) {
    if (maxAt !== undefined && Math.abs(x - maxAt) < 1e-9) return 'max';
    const percentile = 100 * (1 - 10 ** -x);
    return `${Number(percentile.toFixed(Math.max(0, Math.round(x) - 1)))}%`;
  }

  function columnsOf(spec) {
    const xs = Array.from(
      new Set(spec.series.flatMap((series) => series.points.map((point) => point[0]))),
    ).sort((a, b) => a - b);
    const index = new Map(xs.map((x, i) => [x, i]));
    const columns = [xs];
    for (const series of spec.series) {
      const column = new Array(xs.length).fill(null);
      for (const [x, y] of series.points) column[index.get(x)] = y;
      columns.push(column);
    }
    return columns;
  }

  function plotOptions(spec, width) {
    const percentile = spec.percentileAxis;
    const bars = spec.bars;
    const xAxis = { label: spec.xLabel, stroke: '#475569', grid: { stroke: '#eef2f7' } };
    const xScale = { time: false };
    let xValue = (_, value) => number(value);
    if (percentile) {
      const maxAt = percentile.maxAt;
      xScale.range = () => [0, maxAt + 0.05];
      xAxis.splits = () => {
        const splits = [];
        for (let x = 0; x < maxAt - 0.2; x += 1) splits.push(x);
        splits.push(maxAt);
        return splits;
      };
      xAxis.values = (_, splits) => splits.map((x) => percentileText(x, maxAt));
      xValue = (_, value) => (value === null ? '-' : percentileText(value, maxAt));
    }
    if (bars) {
      xScale.range = () => [-0.6, bars.length - 0.4];
      xAxis.splits = () => bars.map((_, i) => i);
      xAxis.values = (_, splits) => splits.map((i) => bars[i] ?? '');
      xValue = (_, value) => (value === null ? '-' : (bars[value] ?? ''));
    }
    const series = [{ label: spec.xLabel, value: xValue }];
    for (const item of spec.series)
      series.push({
        label: item.label,
        stroke: item.color,
        width: bars ? 1 : 2,
        dash: item.dash,
        scale: item.right ? 'right' : 'y',
        spanGaps: true,
        fill: bars ? `${item.color}cc` : undefined,
        points: { show: !bars && item.points.length <= 80, size: 5 },
        paths: bars ? uPlot.paths.bars({ size: [0.7, 80] }) : undefined,
        value: (_, value) => number(value),
      });
    const yValues = (_, splits) => splits.map(tick);
    const axes = [
      xAxis,
      { label: spec.yLabel, stroke: '#475569', grid: { stroke: '#eef2f7' }, size: 60, values: yValues },
    ];
    const scales = { x: xScale, y: { range: (_, min, max) => [Math.min(0, min), max > 0 ? max * 1.08 : 1] } };
    if (spec.rightLabel) {
      axes.push({
        label: spec.rightLabel,
        scale: 'right',
        side: 1,
        stroke: '#b91c1c',
        grid: { show: false },
        size: 60,
        values: yValues,
      });
      scales.right = { range: (_, _min, max) => [0, max > 0 ? max * 1.1 : 1] };
    }
    return {
      width,
      height: 320,
      scales,
      series,
      axes,
      cursor: { drag: { x: !bars, y: false } },
      legend: { live: true },
    };
  }

  const plots = [];
  for (const spec of data.plots) {
    const element = document.getElementById(spec.id);
    if (!element) continue;
    const width = Math.max(320, element.clientWidth || 640);
    plots.push({ element, plot: new uPlot(plotOptions(spec, width), columnsOf(spec), element) });
  }
  let resizing;
  window.addEventListener('resize', () => {
    clearTimeout(resizing);
    resizing = setTimeout(() => {
      for (const { element, plot } of plots)
        plot.setSize({ width: Math.max(320, element.clientWidth), height: 320 });
    }, 100);
  });

  // A row with data-paths (one or two state sequences) highlights them on its diagram; again to clear.
  const edgesOf = (states) => {
    const keys = new Set();
    for (let i = 1; i < states.length; i += 1)
      if (states[i - 1] !== states[i]) keys.add(`${states[i - 1]}>${states[i]}`);
    return keys;
  };
  for (const row of document.querySelectorAll('tr.pick[data-paths]')) {
    row.addEventListener('click', () => {
      const diagram = document.getElementById(row.closest('[data-diagram]').dataset.diagram);
      const active = row.classList.contains('active');
      for (const other of document.querySelectorAll('tr.pick.active')) other.classList.remove('active');
      for (const edge of diagram.querySelectorAll('.edge'))
        edge.classList.remove('dim', 'hl-a', 'hl-b', 'hl-ab');
      if (active) return;
      row.classList.add('active');
      const [a = [], b = []] = JSON.parse(row.dataset.paths);
      const sideA = edgesOf(a);
      const sideB = edgesOf(b);
      for (const edge of diagram.querySelectorAll('.edge')) {
        const key = edge.dataset.edge;
        if (sideA.has(key) && sideB.has(key)) edge.classList.add('hl-ab');
        else if (sideA.has(key)) edge.classList.add('hl-a');
        else if (sideB.has(key)) edge.classList.add('hl-b');
        else edge.classList.add('dim');
      }
    });
  }
  // The matrix: a cell's row, outcome and reason shown under the grids as well as in its tooltip.
  const detail = document.getElementById('cell-detail');
  if (detail)
    for (const cell of document.querySelectorAll('td.cell[data-row]')) {
      const show = () => {
        detail.textContent = cell.title;
      };
      cell.addEventListener('mouseenter', show);
      cell.addEventListener('click', show);
    }
  document.body.dataset.ready = 'true';
})();
