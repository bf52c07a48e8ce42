/**
 * Opens an HTML report in the machine's Chromium (Debian's /usr/bin/chromium, driven by
 * playwright-core: no browser is downloaded), headless and offline, and records what a report must
 * never do: console errors, page errors, and any request beyond the file itself.
 */
import { existsSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { type Browser, chromium, type Page } from 'playwright-core';

export const CHROMIUM = process.env.SIMOPEN_CHROMIUM ?? '/usr/bin/chromium';

export function chromiumMissing(): string | undefined {
  return existsSync(CHROMIUM) ? undefined : `no Chromium at ${CHROMIUM} (npm run setup installs it)`;
}

export interface OpenedReport {
  page: Page;
  /** Console errors and uncaught exceptions, as text. */
  errors: string[];
  /** Every request the page made other than loading the report file itself. */
  requests: string[];
  close(): Promise<void>;
}

let browser: Browser | undefined;

async function launch(): Promise<Browser> {
  browser ??= await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      // Root cannot use Chromium's sandbox.
      ...(process.getuid?.() === 0 ? ['--no-sandbox'] : []),
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-default-apps',
      '--disable-domain-reliability',
      '--disable-sync',
      '--no-first-run',
      '--no-default-browser-check',
      '--metrics-recording-only',
      '--disable-gpu',
    ],
  });
  return browser;
}

export async function closeBrowser(): Promise<void> {
  await browser?.close();
  browser = undefined;
}

/** Opens the report from file:// at a slide-like size and waits until its script has run. */
export async function openReport(
  file: string,
  viewport = { width: 1400, height: 1000 },
): Promise<OpenedReport> {
  const context = await (await launch()).newContext({ viewport, offline: true });
  const page = await context.newPage();
  const errors: string[] = [];
  const requests: string[] = [];
  const url = pathToFileURL(file).href;
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(`console: ${message.text()}`);
  });
  page.on('pageerror', (error) => errors.push(`page: ${error.message}`));
  await context.route('**/*', (route) => {
    const requested = route.request().url();
    if (requested === url) return route.continue();
    requests.push(requested);
    return route.abort();
  });
  page.on('request', (request) => {
    if (request.url() !== url && !requests.includes(request.url())) requests.push(request.url());
  });
  await page.goto(url, { waitUntil: 'load' });
  // Browser-side code is given as text: this project compiles for Node, without the DOM's types.
  await page
    .waitForFunction("document.body.dataset.ready === 'true'", undefined, { timeout: 10_000 })
    .catch(() => {
      errors.push('the page script never finished (body[data-ready] not set)');
    });
  return { page, errors, requests, close: () => context.close() };
}

/** Is every plot canvas and diagram drawn? For each, the number of non-blank pixels (canvas) or shapes (SVG). */
export async function drawnPlots(page: Page): Promise<Record<string, number>> {
  return page.evaluate(`(() => {
    const found = {};
    for (const plot of document.querySelectorAll('.plot')) {
      const canvas = plot.querySelector('canvas');
      let painted = 0;
      if (canvas) {
        const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
        for (let index = 3; index < pixels.length; index += 4) if (pixels[index] > 0) painted += 1;
      }
      found[plot.id] = painted;
    }
    for (const svg of document.querySelectorAll('.diagram svg')) found[svg.id || 'svg'] = svg.querySelectorAll('path, rect').length;
    return found;
  })()`);
}
