/**
 * stress.ts: load-test TCP simultaneous open. Plans N pairs, opens each by simultaneous open (both
 * sides connect, nobody listens), exchanges and checks a payload, closes, and reports.
 * See the stress.ts section of README.md.
 */
import { randomInt } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import { EXIT, ExitError, runMain, UsageError } from '../lib/core/cli.ts';
import { rawTcpUnavailable } from '../lib/core/rawTcp.ts';
import {
  CROSS_FINS_RTO_MIN_MS,
  crossFinsRuleset,
  DROP_EARLY_RST_RULESET,
  insideSandbox,
  probeSandbox,
  reexecInSandbox,
  setLoopbackRtoMin,
  setupSandboxNetwork,
} from '../lib/core/sandbox.ts';
import { type ParsedStress, parseStressOptions, STRESS_USAGE } from '../lib/stress/options.ts';
import { printResult } from '../lib/stress/printResult.ts';
import { runStress } from '../lib/stress/runStress.ts';
import { annotatePairLog, pairsOfPlan, traceOptionsForPlan } from '../lib/stress/traceStress.ts';
import { formatPairKinds, startPairTrace } from '../lib/trace/plannedPairTrace.ts';

/** --mode sandbox asked for, but no private network namespace can be made here. */
export const EXIT_NO_SANDBOX = 3;
const WHY_ENV = 'SIMOPEN_STRESS_MODE_REASON';

const HELP = `usage: ${STRESS_USAGE}

  --pairs N            pairs to run (default 10000; 10k, 1M accepted)
  --duration D         run for a time instead (30s, 2m); with --pairs, whichever ends first
  --concurrency N      pairs in flight over all workers (default 64 per worker)
  --rate N             open loop: start N pairs per second; latency counts from each scheduled start
  --workers N          worker threads (default: one per core; race mode needs 2)
  --payload BYTES      bytes each side sends and the other checks (default 64; 4KiB, 1MiB)
  --close KIND         graceful (A sends FIN first), reset (A aborts, B must see ECONNRESET),
                       simultaneous (both FINs cross: sandbox mode holds the FINs until both sides
                       sent theirs, about 0.3 s per pair; race mode: best effort) (default graceful)
  --timeout D          per pair (default 10s)
  --mode MODE          sandbox (default; private network namespace, falls back to race if impossible)
                       or race (host loopback, the two sides retry from different threads)
  --json FILE          write the summary as JSON
  --log FILE           write one NDJSON record per planned pair
  --min-success PCT    exit 1 if fewer pairs were established (default 100)
  --ports LO-HI        local ports to spread pairs over (sandbox 1024-65535, race 21000-29999)
  --addresses N        loopback addresses to spread pairs over (default all of 127.0.1.1 and up)
  --warmup N           sandbox mode: throwaway pairs per worker before the clock starts (default 5000;
                       0 with --close simultaneous, whose pairs wait on FIN timers, not on the CPU)
  --sockets KIND       sandbox mode: handle (default; Node's libuv TCP handles directly, about twice
                       as fast) or net (net.Socket); race mode always uses net.Socket
  --trace              record every pair's TCP states with the kernel tracepoint (root; else sampled
                       from /proc/net/tcp, labelled) and count how pairs opened and closed
  --quiet              no progress output

exit codes: 0 ok, 1 success below --min-success (or a run error), 2 bad usage,
            3 --mode sandbox impossible here, 130 interrupted (SIGINT/SIGTERM)`;

runMain('stress', STRESS_USAGE, async () => {
  const args = process.argv.slice(2);
  const cores = os.availableParallelism();
  const first = parseStressOptions(args, { cores });
  if (first.help) {
    process.stdout.write(`${HELP}\n`);
    return EXIT.ok;
  }

  let parsed: ParsedStress = first;
  let modeReason: string;
  if (first.options.mode === 'sandbox' && insideSandbox()) {
    if (first.options.close === 'simultaneous') {
      // On loopback the first FIN arrives inside the shutdown() that sends it: held here, the FINs cross.
      setupSandboxNetwork(crossFinsRuleset());
      setLoopbackRtoMin(CROSS_FINS_RTO_MIN_MS);
    } else {
      setupSandboxNetwork(DROP_EARLY_RST_RULESET);
    }
    modeReason = process.env[WHY_ENV] ?? 'private network namespace, early RSTs dropped';
    // The tracepoint sees other namespaces' sockets too: a random address block keeps our 4-tuples apart.
    if (first.options.trace) parsed = parseStressOptions(args, { cores, roundOffset: randomInt(1 << 30) });
  } else if (first.options.mode === 'sandbox') {
    const probe = probeSandbox();
    if (probe.ok) {
      const held = first.options.close === 'simultaneous' ? ', FINs held until both sides sent theirs' : '';
      const why = `${first.options.modeExplicit ? 'asked for' : 'default'}; ${probe.reason}, early RSTs dropped by nft${held}`;
      return await reexecInSandbox({ [WHY_ENV]: why });
    }
    if (first.options.modeExplicit)
      throw new ExitError(`--mode sandbox is not possible here: ${probe.reason}`, EXIT_NO_SANDBOX);
    process.stderr.write(
      `stress: no sandbox (${probe.reason}); falling back to race mode on the host loopback\n`,
    );
    modeReason = `fallback: no sandbox (${probe.reason})`;
    try {
      parsed = parseStressOptions(args, { cores, mode: 'race', roundOffset: randomInt(1 << 30) });
    } catch (error) {
      // Valid for the sandbox, not for the fallback (e.g. --workers 1): say why race mode came into it.
      if (error instanceof UsageError)
        throw new UsageError(
          `no sandbox (${probe.reason}), and the race-mode fallback refuses: ${error.message}`,
        );
      throw error;
    }
  } else {
    modeReason = 'asked for; host loopback, sides retry from different threads';
    // A random first address pair: TIME_WAITs of an earlier run on the shared loopback are elsewhere.
    parsed = parseStressOptions(args, { cores, mode: 'race', roundOffset: randomInt(1 << 30) });
  }
  if (parsed.help) return EXIT.ok;
  const { options, plan } = parsed;
  const rawWhy = options.mode === 'sandbox' && options.sockets === 'handle' ? rawTcpUnavailable() : undefined;
  if (rawWhy) {
    process.stderr.write(`stress: ${rawWhy}; using net.Socket\n`);
    options.sockets = 'net';
  }
  const trace = options.trace ? startPairTrace(traceOptionsForPlan(plan, options.pairs)) : undefined;

  const stop = new AbortController();
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals += 1;
    if (signal === 'SIGHUP') {
      // No terminal any more: writes to it fail (EIO); the files are what counts now.
      process.stdout.on('error', () => {});
      process.stderr.on('error', () => {});
    }
    if (signals === 1) {
      process.stderr.write(
        `\nstress: ${signal}: stopping, cancelling pairs in flight (again to quit at once)\n`,
      );
      stop.abort();
    } else {
      process.stderr.write(`stress: ${signal} again: quitting without a report\n`);
      process.exit(EXIT.interrupted);
    }
  };
  // SIGHUP too (the terminal went away): the JSON and the log still get finished.
  const stopSignals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  for (const signal of stopSignals) process.on(signal, onSignal);

  const result = await runStress({ options, plan, mode: options.mode, modeReason, stop: stop.signal });
  for (const signal of stopSignals) process.off(signal, onSignal);
  const traced = trace && (await trace.stop(pairsOfPlan(plan, result.pairs.planned)));
  if (traced) {
    const { openKinds, closeKinds, label, lostEvents } = traced;
    Object.assign(result, { openKinds, closeKinds, trace: { ...label, lostEvents } });
    if (options.log) await annotatePairLog(options.log, traced.kinds);
  }

  if (options.json) writeFileSync(options.json, `${JSON.stringify(result, null, 2)}\n`);
  process.stdout.write(printResult(result));
  if (traced) process.stdout.write(`${formatPairKinds(traced).join('\n')}\n`);
  if (result.interrupted) return EXIT.interrupted;
  if (result.successPct < options.minSuccess) {
    process.stderr.write(
      `stress: ${result.successPct}% of pairs established, below --min-success ${options.minSuccess}%\n`,
    );
    return EXIT.failure;
  }
  return EXIT.ok;
});
