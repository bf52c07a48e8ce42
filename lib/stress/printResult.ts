/** The human report of a stress run, printed on stdout at the end. Pure: returns the text. */
import type { AttemptStats, HoldReport, OpenReport, Percentiles, StressResult } from './types.ts';

function n(value: number): string {
  return value.toLocaleString('en-US');
}

function pct(part: number, whole: number): string {
  return whole > 0 ? `${((part / whole) * 100).toFixed(2)}%` : '-';
}

function counts(record: Record<string, number>): string {
  const entries = Object.entries(record);
  return entries.length ? entries.map(([code, count]) => `${code} ${n(count)}`).join(', ') : 'none';
}

function latency(p: Percentiles | null): string {
  if (!p) return 'n/a (no established pair)';
  return `p50 ${p.p50} ms  p90 ${p.p90} ms  p99 ${p.p99} ms  p99.9 ${p.p999} ms  max ${p.max} ms  (mean ${p.mean} ms)`;
}

function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

/** The open line (crossed and skew; one-sided is the default and says nothing). */
export function describeOpenReport(open: OpenReport): string {
  const wave = open.pairsPerWave
    ? `, ${n(open.pairsPerWave)} pair${open.pairsPerWave === 1 ? '' : 's'} per wave`
    : '';
  if (open.mode === 'crossed') return `crossed (both SYNs held on the veth link, released together${wave})`;
  if (open.mode === 'skew')
    return `skew: B connects ${open.skewMs} ms after A; the link delivers every ${open.delayMs} ms; early SYN ${open.earlySyn === 'rst' ? 'answered with RST (that side connects again)' : 'dropped'}${wave}`;
  return 'one-sided';
}

function attemptLine(side: string, stats: AttemptStats | null): string {
  return stats
    ? `${side} p50 ${stats.p50}  p99 ${stats.p99}  max ${stats.max}  (mean ${stats.mean})`
    : `${side} n/a`;
}

function holdLine(hold: HoldReport): string {
  const perPair =
    hold.rssPerHeldPairBytes === null ? 'n/a' : `${(hold.rssPerHeldPairBytes / 1024).toFixed(2)} KiB`;
  return (
    `${hold.holdMs / 1000} s each, keepalive every ${hold.keepaliveMs / 1000} s: ${n(hold.peakOpenPairs)} pairs open at once at the peak, ` +
    `${n(hold.keepalivesVerified)} keepalives checked; resident memory ${perPair} per held pair ` +
    `(peak ${mib(hold.peakRssBytes)}, ${mib(hold.rssAtStartBytes)} when the first pair started)`
  );
}

export function printResult(result: StressResult): string {
  const { pairs } = result;
  const lines = [
    `simopen stress: ${result.interrupted ? 'INTERRUPTED, partial report' : 'done'}`,
    `  mode           ${result.mode} (${result.modeReason})`,
    ...(result.open.mode !== 'one-sided' ? [`  open           ${describeOpenReport(result.open)}`] : []),
    `  workers        ${result.workers}${result.processes ? ` (in ${result.processes} processes)` : ''}, ${n(result.concurrency)} pair${result.concurrency === 1 ? '' : 's'} in flight at most, ${
      result.sockets === 'handle' ? 'bare TCP handles' : 'net.Socket'
    }${result.socketsReason ? ` (${result.socketsReason})` : ''}${result.warmupPairsPerWorker ? `, ${n(result.warmupPairsPerWorker)} warm-up pairs each` : ''}${result.rate !== null ? `, open loop at ${n(result.rate)} pairs/s` : ''}`,
    `  per pair       ${n(result.payloadBytes)} bytes each way, close ${result.close}, timeout ${result.timeoutMs} ms`,
    `  pairs          planned ${n(pairs.planned)}  established ${n(pairs.established)} (${pct(
      pairs.established,
      pairs.planned,
    )})  failed ${n(pairs.failed)}  cancelled ${n(pairs.cancelled)}  not started ${n(pairs.notStarted)}`,
    `  throughput     ${n(result.pairsPerSec)} pairs/s (${(result.durationMs / 1000).toFixed(2)} s)`,
    `  establish      ${latency(result.establishMs)}`,
    `  whole pair     ${latency(result.pairMs)}`,
    `  attempts/side  ${
      result.attempts
        ? `p50 ${result.attempts.p50}  p90 ${result.attempts.p90}  p99 ${result.attempts.p99}  max ${result.attempts.max}  (mean ${result.attempts.mean})`
        : 'n/a'
    }`,
    ...(result.attemptsBySide.some((side) => side && side.max > 1)
      ? [
          `  attempts A/B   ${attemptLine('A', result.attemptsBySide[0])};  ${attemptLine('B', result.attemptsBySide[1])}`,
        ]
      : []),
    `  errors         ${counts(result.errors)}`,
  ];
  if (result.hold) lines.push(`  hold           ${holdLine(result.hold)}`);
  if (result.mode === 'race' && result.close === 'simultaneous')
    lines.push(
      '  note           race mode cannot hold FINs (host loopback, no nft): the FINs cross only when the two threads happen to send them together; --trace shows how each pair closed',
    );
  if (Object.keys(result.retryErrors).length) lines.push(`  retried        ${counts(result.retryErrors)}`);
  lines.push(
    `  bytes verified ${n(result.bytesVerified)}`,
    `  close outcomes ${counts(result.closeOutcomes)}`,
  );
  if (result.workerCrashes)
    lines.push(
      `  worker crashes ${result.workerCrashes} (their unfinished pairs count as failed: EWORKERCRASH)`,
    );
  if (result.log) lines.push(`  pair log       ${result.log}`);
  for (const failed of result.outputErrors ?? [])
    lines.push(
      `  output failed  ${failed.option} ${failed.path}: ${failed.error}${
        failed.unlogged ? ` (${n(failed.unlogged)} pair records missing from it)` : ''
      }`,
    );
  return `${lines.join('\n')}\n`;
}
