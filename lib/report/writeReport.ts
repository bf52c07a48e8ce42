/**
 * Writes a report page into an output file opened before the run (lib/core/outputFile.ts): the
 * file is truncated and the whole document written through its descriptor, never renamed over.
 */
import type { OutputFile } from '../core/outputFile.ts';
import type { StressResult } from '../stress/types.ts';
import { renderPage } from './html.ts';
import { stressReportPage } from './stressReport.ts';
import type { ReportPage } from './types.ts';

export function writeReportPage(output: OutputFile, page: ReportPage): void {
  const html = renderPage(page);
  output.truncate();
  output.write(html);
}

/** stress.ts --report: the page of this result; `text` is the text report as printed. */
export function writeStressReport(output: OutputFile, result: StressResult, text: string): void {
  writeReportPage(output, stressReportPage(result, text));
}
