/** The reports' stylesheet (inlined into each page by lib/report/html.ts). */
export const PAGE_STYLE = `
:root {
  --ink: #0f172a; --muted: #64748b; --line: #e2e8f0; --panel: #ffffff; --page: #f1f5f9;
  --good: #15803d; --good-bg: #dcfce7; --bad: #b91c1c; --bad-bg: #fee2e2; --warn: #b45309; --warn-bg: #fef3c7;
  --accent: #2563eb;
}
* { box-sizing: border-box; }
body { margin: 0; background: var(--page); color: var(--ink);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
header { background: #0f172a; color: #f8fafc; padding: 22px 32px 14px; }
header .brand { font-size: 12px; letter-spacing: .12em; text-transform: uppercase; color: #93c5fd; }
header h1 { margin: 4px 0 2px; font-size: 26px; font-weight: 650; }
header .subtitle { margin: 0 0 10px; color: #cbd5e1; }
header nav { display: flex; flex-wrap: wrap; gap: 4px 14px; font-size: 13px; }
header nav a { color: #bfdbfe; text-decoration: none; }
header nav a:hover { text-decoration: underline; }
main { max-width: 1280px; margin: 0 auto; padding: 20px 24px 8px; }
.tiles { display: grid; grid-template-columns: repeat(auto-fit, minmax(170px, 1fr)); gap: 12px; margin-bottom: 16px; }
.tile { background: var(--panel); border: 1px solid var(--line); border-radius: 10px; padding: 12px 14px; border-top: 4px solid #94a3b8; }
.tile.good { border-top-color: var(--good); } .tile.bad { border-top-color: var(--bad); } .tile.warn { border-top-color: #f59e0b; }
.tile-label { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
.tile-value { font-size: 26px; font-weight: 650; font-variant-numeric: tabular-nums; margin-top: 2px; }
.tile-note { color: var(--muted); font-size: 12px; }
.grid { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 16px; }
.card { background: var(--panel); border: 1px solid var(--line); border-radius: 10px; padding: 14px 18px 16px; min-width: 0; }
.card.wide { grid-column: 1 / -1; }
.card h2 { font-size: 16px; margin: 0 0 10px; font-weight: 650; }
.card h3 { font-size: 13px; margin: 14px 0 6px; color: var(--muted); text-transform: uppercase; letter-spacing: .04em; }
.note { color: var(--muted); font-size: 12.5px; margin: 8px 0 0; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { color: var(--muted); font-weight: 600; font-size: 12px; text-transform: uppercase; letter-spacing: .03em; }
td.num, th.num { text-align: right; }
table.kv th { width: 150px; text-transform: none; font-size: 13px; letter-spacing: 0; }
.pass { color: var(--good); font-weight: 650; } .fail { color: var(--bad); font-weight: 650; }
.better { color: var(--good); } .worse { color: var(--bad); }
.badge { display: inline-block; padding: 1px 8px; border-radius: 999px; font-size: 12px; font-weight: 600; background: #e2e8f0; }
.badge.good { background: var(--good-bg); color: var(--good); } .badge.bad { background: var(--bad-bg); color: var(--bad); }
.badge.warn { background: var(--warn-bg); color: var(--warn); }
.plot { width: 100%; min-height: 320px; }
.plot .u-legend { font-size: 12.5px; }
pre { background: #0f172a; color: #e2e8f0; padding: 12px 14px; border-radius: 8px; overflow-x: auto; font-size: 12.5px; line-height: 1.4; }
details summary { cursor: pointer; color: var(--accent); }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12.5px; }
.diagram-wrap { display: grid; grid-template-columns: minmax(0, 3fr) minmax(260px, 2fr); gap: 18px; align-items: start; }
.diagram svg { width: 100%; height: auto; max-width: 820px; display: block; margin: 0 auto; }
.diagram .node rect { fill: #f8fafc; stroke: #334155; stroke-width: 1.5; }
.diagram .node.seen rect { fill: #eff6ff; stroke: #1e3a8a; stroke-width: 2; }
.diagram .node text { font: 600 13px system-ui, sans-serif; fill: #0f172a; text-anchor: middle; dominant-baseline: central; }
.diagram .edge path { fill: none; }
.diagram .edge .event { font: 11px system-ui, sans-serif; fill: #94a3b8; }
.diagram .edge .count { font: 700 13px system-ui, sans-serif; paint-order: stroke; stroke: #fff; stroke-width: 4px; }
.diagram .edge.idle path { stroke: #cbd5e1; }
.diagram .edge.dim { opacity: .18; }
.diagram .edge.hl-a path, .diagram .edge.hl-b path, .diagram .edge.hl-ab path { opacity: 1; }
.diagram .edge.hl-a path { stroke: #7c3aed !important; } .diagram .edge.hl-b path { stroke: #db2777 !important; }
.diagram .edge.hl-ab path { stroke: #7c3aed !important; stroke-dasharray: 10 5; }
.legend-swatch { display: inline-block; width: 22px; height: 4px; border-radius: 2px; vertical-align: middle; margin-right: 6px; }
tr.pick { cursor: pointer; } tr.pick:hover { background: #f8fafc; } tr.pick.active { background: #ede9fe; }
.states { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12px; }
.matrix-grid { width: auto; }
.matrix-grid td.cell { text-align: center; font-weight: 650; min-width: 96px; height: 30px; border: 2px solid #fff; border-radius: 6px; cursor: help; }
.matrix-grid td.cell.all { background: #bbf7d0; color: #14532d; } .matrix-grid td.cell.none { background: #fecaca; color: #7f1d1d; }
.matrix-grid td.cell.some { background: #fde68a; color: #78350f; } .matrix-grid td.cell.empty { background: #f8fafc; cursor: default; }
.matrix-grid td.cell.mismatch { outline: 3px solid #0f172a; outline-offset: -3px; }
.matrix-grid th.row-head { text-align: right; white-space: nowrap; text-transform: none; font-size: 12.5px; color: var(--ink); }
.matrix-grid th.col-head { text-align: center; white-space: nowrap; text-transform: none; font-size: 12px; color: var(--ink); vertical-align: bottom; }
.matrix-grid .axis { color: var(--muted); font-size: 12px; }
.cell-detail { white-space: pre-wrap; background: #f8fafc; color: var(--ink); border: 1px solid var(--line); min-height: 5.5em; margin-top: 12px; }
footer { max-width: 1280px; margin: 0 auto; padding: 10px 24px 28px; color: var(--muted); font-size: 12px; }
@media (max-width: 900px) { .grid { grid-template-columns: 1fr; } .diagram-wrap { grid-template-columns: 1fr; } }
@media print { body { background: #fff; } header { background: #fff; color: var(--ink); } .card { break-inside: avoid; } }
`;
