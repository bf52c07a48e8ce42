/**
 * One self-contained HTML file from a ReportPage: the chart library (uPlot) and the page's script
 * inlined from node_modules and lib/report/client at write time, the data as a JSON block, a
 * Content-Security-Policy that lets the page load nothing from anywhere. It opens from file://,
 * offline, with no server.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { PAGE_STYLE } from './pageStyle.ts';
import type { ReportPage, Tile } from './types.ts';

const require = createRequire(import.meta.url);

/** Text for HTML content and attribute values. */
export function escapeHtml(text: string | number): string {
  return String(text)
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&#39;');
}

/** JSON inside <script>: nothing in it can close the element or open a comment. */
export function scriptJson(value: unknown): string {
  return JSON.stringify(value)
    .replaceAll('<', '\\u003c')
    .replaceAll('>', '\\u003e')
    .replaceAll('&', '\\u0026')
    .replaceAll('\u2028', '\\u2028')
    .replaceAll('\u2029', '\\u2029');
}

/** Inlined code must not end the <script> or <style> element it sits in. */
function inlineSafe(code: string, element: 'script' | 'style'): string {
  return code.replace(new RegExp(`</${element}`, 'gi'), `<\\/${element}`);
}

export interface PageAssets {
  uplotScript: string;
  uplotStyle: string;
  clientScript: string;
  uplotVersion: string;
}

let cached: PageAssets | undefined;

/** uPlot and the page's script, read once per process. */
export function loadPageAssets(): PageAssets {
  if (cached) return cached;
  const uplotPackage = JSON.parse(readFileSync(require.resolve('uplot/package.json'), 'utf8')) as {
    version: string;
  };
  cached = {
    uplotScript: readFileSync(require.resolve('uplot/dist/uPlot.iife.min.js'), 'utf8'),
    uplotStyle: readFileSync(require.resolve('uplot/dist/uPlot.min.css'), 'utf8'),
    clientScript: readFileSync(new URL('./client/reportClient.js', import.meta.url), 'utf8'),
    uplotVersion: uplotPackage.version,
  };
  return cached;
}

/** The page loads nothing: inline script and style only, images from data: URLs. */
export const CONTENT_SECURITY_POLICY =
  "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'";

function tile(tile: Tile): string {
  const figure = tile.figure ? ` data-figure="${escapeHtml(tile.figure)}"` : '';
  return `<div class="tile ${tile.tone ?? 'plain'}"${figure}><div class="tile-label">${escapeHtml(tile.label)}</div><div class="tile-value">${escapeHtml(tile.value)}</div>${
    tile.note ? `<div class="tile-note">${escapeHtml(tile.note)}</div>` : ''
  }</div>`;
}

/** The whole document. `generatedAt` is shown in the footer (a test passes a fixed one). */
export function renderPage(page: ReportPage, generatedAt = new Date(), assets = loadPageAssets()): string {
  const sections = page.sections
    .map(
      (section) =>
        `<section id="${escapeHtml(section.id)}" class="card${section.wide ? ' wide' : ''}"><h2>${escapeHtml(section.title)}</h2>${section.html}</section>`,
    )
    .join('\n');
  const nav = page.sections
    .map((section) => `<a href="#${escapeHtml(section.id)}">${escapeHtml(section.title)}</a>`)
    .join('');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${escapeHtml(CONTENT_SECURITY_POLICY)}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="simopen">
<title>${escapeHtml(page.title)}</title>
<style>${inlineSafe(assets.uplotStyle, 'style')}</style>
<style>${inlineSafe(PAGE_STYLE, 'style')}</style>
</head>
<body data-kind="${escapeHtml(page.kind)}">
<header>
<div class="brand">simopen</div>
<h1>${escapeHtml(page.title)}</h1>
<p class="subtitle">${escapeHtml(page.subtitle)}</p>
<nav>${nav}</nav>
</header>
<main>
<div class="tiles">${page.tiles.map(tile).join('')}</div>
<div class="grid">
${sections}
</div>
</main>
<footer>Written by simopen on ${escapeHtml(
    generatedAt
      .toISOString()
      .replace('T', ' ')
      .replace(/\.\d+Z$/, ' UTC'),
  )}. One self-contained file: it loads nothing (plots drawn with uPlot ${escapeHtml(assets.uplotVersion)}, inlined).</footer>
<script type="application/json" id="report-data">${scriptJson(page.data)}</script>
<script>${inlineSafe(assets.uplotScript, 'script')}</script>
<script>${inlineSafe(assets.clientScript, 'script')}</script>
</body>
</html>
`;
}
