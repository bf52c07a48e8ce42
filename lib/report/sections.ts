/**
 * Building blocks the report kinds share: number formatting with the figure kept in data attributes
 * (so a reader or a test finds the exact value), key/value and count tables, a table of any records
 * (for breakdowns whose shape another part of simopen defines), and the state diagram section.
 */
import { formatSourceLabel, TIME_WAIT_NOTE } from '../trace/formatPaths.ts';
import type { SourceLabel, StateEdges } from '../trace/types.ts';
import { escapeHtml } from './html.ts';
import { CATEGORY_COLORS, renderStateDiagram } from './stateDiagram.ts';
import type { Section } from './types.ts';

export function formatNumber(value: number, digits = 3): string {
  return value.toLocaleString('en-US', { maximumFractionDigits: digits });
}

/**
 * A number shown formatted (times `scale`, with `suffix`), its exact value (as the JSON has it) and
 * what it is in data attributes.
 */
export function figure(
  name: string,
  value: number | null | undefined,
  suffix = '',
  digits = 3,
  scale = 1,
): string {
  if (value === null || value === undefined)
    return `<span data-figure="${escapeHtml(name)}" data-value="">-</span>`;
  return `<span data-figure="${escapeHtml(name)}" data-value="${value}">${escapeHtml(formatNumber(value * scale, digits))}${escapeHtml(suffix)}</span>`;
}

/** Rows of [label, HTML]. */
export function kvTable(rows: [string, string][]): string {
  return `<table class="kv"><tbody>${rows.map(([key, html]) => `<tr><th>${escapeHtml(key)}</th><td>${html}</td></tr>`).join('')}</tbody></table>`;
}

/** A count per key, largest first (zero counts left out); `prefix` names the figures ("errors"). */
export function countsTable(
  counts: Record<string, number>,
  prefix: string,
  header: [string, string],
  total?: number,
): string {
  const entries = Object.entries(counts).filter(([, count]) => count > 0);
  if (!entries.length) return '<p class="note">none</p>';
  entries.sort((x, y) => y[1] - x[1]);
  const sum = total ?? entries.reduce((acc, [, count]) => acc + count, 0);
  return `<table><thead><tr><th>${escapeHtml(header[0])}</th><th class="num">${escapeHtml(header[1])}</th><th class="num">share</th></tr></thead><tbody>${entries
    .map(
      ([key, count]) =>
        `<tr><td><code>${escapeHtml(key)}</code></td><td class="num">${figure(`${prefix}.${key}`, count)}</td><td class="num">${sum > 0 ? `${formatNumber((count / sum) * 100, 2)}%` : '-'}</td></tr>`,
    )
    .join('')}</tbody></table>`;
}

function cellText(value: unknown): string {
  if (value === null || value === undefined) return '-';
  if (typeof value === 'number') return formatNumber(value);
  if (typeof value === 'string' || typeof value === 'boolean') return String(value);
  if (Array.isArray(value)) return value.map(cellText).join(', ');
  return Object.entries(value as Record<string, unknown>)
    .map(([key, inner]) => `${key} ${cellText(inner)}`)
    .join(', ');
}

/** Nested objects one level deep become "outer.inner" columns; deeper ones are written out in the cell. */
function flatten(record: Record<string, unknown>): Record<string, unknown> {
  const flat: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(record)) {
    if (value && typeof value === 'object' && !Array.isArray(value))
      for (const [inner, innerValue] of Object.entries(value as Record<string, unknown>))
        flat[`${key}.${inner}`] = innerValue;
    else flat[key] = value;
  }
  return flat;
}

/**
 * A table of records whose shape this module does not know (a per-agent or per-router breakdown):
 * one row per record, one column per field seen, nested objects flattened one level.
 */
export function recordsTable(records: readonly unknown[], maxRows = 200): string {
  const rows = records
    .filter((record): record is Record<string, unknown> => !!record && typeof record === 'object')
    .map(flatten);
  if (!rows.length) return '<p class="note">none</p>';
  const columns: string[] = [];
  for (const row of rows) for (const key of Object.keys(row)) if (!columns.includes(key)) columns.push(key);
  const shown = rows.slice(0, maxRows);
  return `<div style="overflow-x:auto"><table><thead><tr>${columns.map((column) => `<th>${escapeHtml(column)}</th>`).join('')}</tr></thead><tbody>${shown
    .map(
      (row) =>
        `<tr>${columns.map((column) => `<td${typeof row[column] === 'number' ? ' class="num"' : ''}>${escapeHtml(cellText(row[column]))}</td>`).join('')}</tr>`,
    )
    .join(
      '',
    )}</tbody></table></div>${rows.length > maxRows ? `<p class="note">${formatNumber(rows.length - maxRows)} more not shown.</p>` : ''}`;
}

export function legend(): string {
  const swatch = (color: string, text: string) =>
    `<span style="margin-right:14px"><span class="legend-swatch" style="background:${color}"></span>${escapeHtml(text)}</span>`;
  return `<p class="note">${swatch(CATEGORY_COLORS.open, 'opening')}${swatch(CATEGORY_COLORS.close, 'closing')}${swatch(CATEGORY_COLORS.abort, 'abort, reset, failed connect')}${swatch('#cbd5e1', 'in RFC 9293, not taken')}</p>`;
}

/** A table of distinct paths; a click highlights one on the diagram. */
export function pathsTable(edges: StateEdges, diagramId: string, unit: string): string {
  if (!edges.paths.length) return '';
  const rows = edges.paths
    .map(
      (path) =>
        `<tr class="pick" data-paths="${escapeHtml(JSON.stringify([path.states]))}"><td class="states">${escapeHtml(path.states.join(' → '))}</td><td class="num">${formatNumber(path.sides)}</td></tr>`,
    )
    .join('');
  const notListed = edges.sidesNotListed
    ? `<p class="note">${formatNumber(edges.sidesNotListed)} ${unit} took other paths (more distinct paths than listed); their edges are counted on the diagram.</p>`
    : '';
  return `<div data-diagram="${escapeHtml(diagramId)}"><table><thead><tr><th>path (click to show it on the diagram)</th><th class="num">${escapeHtml(unit)}</th></tr></thead><tbody>${rows}</tbody></table></div>${notListed}`;
}

export interface DiagramSectionInput {
  edges: StateEdges;
  label?: SourceLabel;
  lostEvents?: number;
  /** Extra HTML beside the diagram (kind counts, connections). */
  aside: string;
  /** What a count counts. */
  unit: string;
  intro: string;
}

export const DIAGRAM_ID = 'state-diagram';

/** The state diagram with its edge counts, the kind counts beside it, and the distinct paths. */
export function diagramSection(input: DiagramSectionInput): Section {
  const { edges, label, lostEvents } = input;
  const inferred = edges.edges.some((edge) => edge.to === 'TIME_WAIT');
  const lost = lostEvents
    ? `<p class="note fail">The kernel dropped ${formatNumber(lostEvents)} events (ring buffer full): some paths are incomplete.</p>`
    : '';
  const html = `<p class="note" style="margin:0 0 8px">${escapeHtml(input.intro)}</p>${legend()}<div class="diagram-wrap"><div class="diagram">${renderStateDiagram(edges.edges, { id: DIAGRAM_ID, unit: input.unit })}</div><div>${input.aside}<h3>Distinct paths</h3>${pathsTable(edges, DIAGRAM_ID, input.unit)}</div></div>${
    label ? `<p class="note">${escapeHtml(formatSourceLabel(label))}.</p>` : ''
  }${inferred ? `<p class="note">${escapeHtml(TIME_WAIT_NOTE)}.</p>` : ''}${lost}`;
  return {
    id: 'state-diagram-section',
    title: 'TCP state diagram, as the kernel reported it',
    html,
    wide: true,
  };
}
