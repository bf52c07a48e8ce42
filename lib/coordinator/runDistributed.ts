/**
 * The coordinator's run: connect to every agent and set the run up (an agent that cannot be reached,
 * refuses the token or cannot prepare is an AgentStartError before any pair runs), then hand out
 * batches, one link at a time in turn, both agents of the link getting the same batch, with a bounded
 * number of pairs in flight; join the two sides of every pair as their records come back, count it
 * (pair-level HDR histograms, counters) and log it (one NDJSON record per pair, both sides' facts);
 * and at the end gather each agent's side statistics (encoded histograms, added exactly).
 *
 * An agent lost during the run (closed, failed, silent) is reported by name; the pairs it had in
 * flight fail with agent-lost (their other sides are cancelled at once), its links take no more
 * pairs, and the other links finish the run. Planned = established + failed + cancelled + notStarted.
 */
import { performance } from 'node:perf_hooks';
import { AGENT_LOST, type LinkAssignment, RECORD_FIELDS } from '../agent/types.ts';
import { epochNow } from '../core/clock.ts';
import { describeFileError, type OutputFile } from '../core/outputFile.ts';
import { aggregateResult } from '../stress/aggregateResult.ts';
import { addIdRange, closeNotStarted } from '../stress/idRanges.ts';
import {
  AppendError,
  formatNotStartedRecord,
  formatPairRecord,
  PairLogFile,
  trimTornLine,
} from '../stress/pairLog.ts';
import { mergeStats, PairStats } from '../stress/pairStats.ts';
import { type ProgressCounts, ProgressTracker } from '../stress/progressTracker.ts';
import { TimelineSampler } from '../stress/timeline.ts';
import type { IdRange, OutputError, StressOptions, StressResult } from '../stress/types.ts';
import { AgentClient, AgentStartError } from './agentClient.ts';
import { breakdownOf } from './breakdown.ts';
import { type BatchHalf, joinPair } from './joinSides.ts';
import { batchSize, pairEndpointsOf, planCapacity, planLinks } from './planLinks.ts';
import type { AgentSpec, DistributedResult, Link, LinkSummary } from './types.ts';

export interface DistributedRunInput {
  options: StressOptions;
  agents: AgentSpec[];
  token: string;
  /** The report's mode: lab (the default) or agents (stress.ts --agents, across hosts). */
  mode?: 'lab' | 'agents';
  /** Why the pairs run where they do, for the report's mode line. */
  modeReason: string;
  /** Aborting it stops the run: no new pairs, in-flight ones cancelled, partial result. */
  stop: AbortSignal;
  log?: OutputFile;
  /** How long an agent may send nothing before it is lost. */
  silenceMs: number;
  /** How long to keep trying to reach an agent at the start. */
  connectTimeoutMs: number;
  /** Worker threads per agent (undefined: each agent's own). */
  workersPerAgent: number | undefined;
  /** Called once every agent is ready, before the first pair (the lab takes its conntrack snapshot). */
  beforeFirstPair?: () => Promise<void>;
  /** Called with the two halves of every pair as it is joined (timed connects measure the skew). */
  onPair?: (a: BatchHalf, b: BatchHalf, index: number, t0: number) => void;
  /** Called when the last pair has been joined, before the agents' statistics are gathered. */
  afterLastPair?: () => Promise<void>;
}

interface Flight {
  batch: number;
  link: Link;
  firstId: number;
  firstIndex: number;
  count: number;
  halves: [BatchHalf | undefined, BatchHalf | undefined];
  sentAt: number;
}

/** A batch that has not come back this long after its pairs' timeout means its agent has stalled. */
const STALL_GRACE_MS = 30_000;

export async function runDistributed(input: DistributedRunInput): Promise<DistributedResult> {
  const { options, agents } = input;
  const links = planLinks(agents.length, options.ports);
  const clients: AgentClient[] = [];
  try {
    // Connect and set up every agent before any pair: one that cannot start ends the run here, by name.
    const connected = await Promise.allSettled(
      agents.map((spec) =>
        AgentClient.connect(spec, {
          token: input.token,
          silenceMs: input.silenceMs,
          connectTimeoutMs: input.connectTimeoutMs,
        }),
      ),
    );
    for (const outcome of connected) if (outcome.status === 'fulfilled') clients.push(outcome.value);
    const refused = connected.find((outcome) => outcome.status === 'rejected');
    if (refused) throw (refused as PromiseRejectedResult).reason;
    const size = batchSize(options, links.length);
    // Rounded up: the last batch may be partial (pairs in flight are bounded by --concurrency anyway),
    // and held pairs need every batch out at once.
    const maxOutstanding = Math.max(2 * links.length, Math.ceil(options.concurrency / size));
    await Promise.all(
      clients.map((client, index) =>
        client
          .setup({
            type: 'setup',
            run: {
              payload: options.payload,
              close: options.close,
              sockets: options.sockets,
              timeoutMs: options.timeoutMs,
              rate: options.rate,
              ports: options.ports,
              ...(options.holdMs > 0 ? { holdMs: options.holdMs, keepaliveMs: options.keepaliveMs } : {}),
            },
            links: assignments(agents, links, index),
            maxBatches: maxOutstanding,
            workers: input.workersPerAgent,
          })
          .catch((error: unknown) => {
            throw error instanceof AgentStartError
              ? error
              : new AgentStartError(agents[index]?.name ?? '?', String(error));
          }),
      ),
    );
    if (input.beforeFirstPair) await input.beforeFirstPair();
    return await dispatchAndJoin(input, clients, links, size, maxOutstanding);
  } finally {
    for (const client of clients) client.close();
  }
}

/** How often the held pairs and the agents' resident sets are summed for their peaks (pongs come every second). */
const HOLD_SAMPLE_MS = 250;
/** Before the first pair, each agent's resident set (a pong) is waited for this long at most. */
const HOLD_BASELINE_WAIT_MS = 3000;

/**
 * --hold through agents: the peak of pairs open at once (the A sides the agents hold, summed over
 * their pongs) and the agents' resident sets summed (the agents hold the sockets; the coordinator's
 * own memory does not grow with them), from their value before the first pair to their peak.
 */
async function watchHold(clients: AgentClient[], counts: ProgressCounts) {
  // A fresh reading: the last pong may be from before the agent's pool had loaded.
  await Promise.all(clients.map((client) => client.pingNow(HOLD_BASELINE_WAIT_MS)));
  const sum = (read: (client: AgentClient) => number) =>
    clients.reduce((total, client) => total + read(client), 0);
  const rssAtStartBytes = sum((client) => client.rssBytes ?? 0);
  let peakOpenPairs = 0;
  let peakRssBytes = rssAtStartBytes;
  let timer: NodeJS.Timeout | undefined;
  const sample = () => {
    const held = sum((client) => client.heldA);
    counts.open = held;
    peakOpenPairs = Math.max(peakOpenPairs, held);
    // Each agent's peak between its pongs, summed (as a spread local hold sums its processes' peaks).
    peakRssBytes = Math.max(
      peakRssBytes,
      sum((client) => client.rssPeakBytes ?? client.rssBytes ?? 0),
    );
  };
  return {
    start: () => {
      timer = setInterval(sample, HOLD_SAMPLE_MS);
    },
    stop: () => {
      clearInterval(timer);
      sample();
      return { peakOpenPairs, rssAtStartBytes, peakRssBytes };
    },
  };
}

/** What agent `index` is told about each of its links. */
function assignments(agents: readonly AgentSpec[], links: readonly Link[], index: number): LinkAssignment[] {
  return links
    .filter((link) => link.a === index || link.b === index)
    .map((link) => {
      const role = link.a === index ? 'a' : 'b';
      const peer = agents[role === 'a' ? link.b : link.a] as AgentSpec;
      return {
        link: link.link,
        role,
        local: (agents[index] as AgentSpec).bindAddress,
        peer: peer.publicAddress,
        peerName: peer.name,
        portOffset: link.portOffset,
      };
    });
}

async function dispatchAndJoin(
  input: DistributedRunInput,
  clients: AgentClient[],
  links: Link[],
  size: number,
  maxOutstanding: number,
): Promise<DistributedResult> {
  const { options, agents, stop } = input;
  const stats = new PairStats();
  const notStartedIds: IdRange[] = [];
  const linkSummaries: LinkSummary[] = links.map((link) => ({
    agents: [agents[link.a]?.name ?? '?', agents[link.b]?.name ?? '?'],
    planned: 0,
    established: 0,
    failed: 0,
    cancelled: 0,
    notStarted: 0,
    errors: {},
  }));
  const sidesOf = agents.map(() => ({ a: 0, b: 0 }));
  const lost = new Map<number, { reason: string; atMs: number }>();
  const flights = new Map<number, Flight>();
  const nextIndex = links.map(() => 0);
  const log = input.log ? new PairLogFile(input.log.fd) : undefined;
  let logFailed = false;
  let outputError: OutputError | undefined;
  const counts: ProgressCounts & { notStarted: number } = {
    established: 0,
    failed: 0,
    cancelled: 0,
    notStarted: 0,
    ...(options.holdMs > 0 ? { open: 0 } : {}),
  };
  // --hold: a side's time includes the hold, and the interval A waits after it (lib/agent/runSides.ts).
  const holdAllowanceMs = options.holdMs > 0 ? options.holdMs + options.keepaliveMs : 0;
  const holdWatch = options.holdMs > 0 ? await watchHold(clients, counts) : undefined;

  const capacity = planCapacity(links.length, options.ports);
  let limit = Math.min(options.pairs ?? capacity, capacity);
  const t0 = epochNow();
  if (options.rate !== undefined && options.durationMs !== undefined)
    limit = Math.min(limit, Math.ceil((options.durationMs * options.rate) / 1000));
  const endAt = options.durationMs === undefined ? Number.POSITIVE_INFINITY : t0 + options.durationMs;
  let nextId = 0;
  let nextBatch = 0;
  let linkTurn = 0;
  let stopped = false;
  let inFlightPairs = 0;
  let wake: NodeJS.Timeout | undefined;
  let finished: () => void = () => {};
  const allJoined = new Promise<void>((resolve) => {
    finished = resolve;
  });

  const appendLog = (text: string, records: number) => {
    if (!log || !input.log || !text) return;
    if (logFailed) {
      if (outputError) outputError.unlogged = (outputError.unlogged ?? 0) + records;
      return;
    }
    try {
      log.append(text);
    } catch (error) {
      const failed = error instanceof AppendError ? error : new AppendError(error, 0);
      logFailed = true;
      outputError = {
        option: input.log.option,
        path: input.log.path,
        error: describeFileError(failed.cause),
        unlogged: Math.max(0, records - failed.linesWritten),
      };
      process.stderr.write(
        `\nstress: ${input.log.option} ${input.log.path}: ${outputError.error}; starting no more pairs\n`,
      );
      halt();
    }
  };

  const liveLink = (link: Link) => !lost.has(link.a) && !lost.has(link.b);

  const join = (flight: Flight) => {
    flights.delete(flight.batch);
    inFlightPairs -= flight.count;
    const [halfA, halfB] = flight.halves as [BatchHalf, BatchHalf];
    const summary = linkSummaries[flight.link.link] as LinkSummary;
    const nameA = agents[flight.link.a]?.name ?? '?';
    const nameB = agents[flight.link.b]?.name ?? '?';
    const lines: string[] = [];
    for (let index = 0; index < flight.count; index += 1) {
      const id = flight.firstId + index;
      const pair = joinPair(halfA, halfB, index, t0);
      input.onPair?.(halfA, halfB, index, t0);
      if (pair.notStarted) {
        addIdRange(notStartedIds, id, id);
        stats.recordNotStarted();
        summary.notStarted += 1;
        counts.notStarted += 1;
        continue;
      }
      const started = pair.startedAt > 0;
      if (!started && pair.outcome === 'cancelled') {
        addIdRange(notStartedIds, id, id);
        stats.recordNotStarted();
        summary.notStarted += 1;
        counts.notStarted += 1;
        continue;
      }
      stats.recordAttempts(pair.attempts[0], 0);
      stats.recordAttempts(pair.attempts[1], 1);
      stats.bytesVerified += pair.bytesVerified;
      const due = options.rate === undefined ? pair.startedAt : t0 + (id * 1000) / options.rate;
      const lagMs = started ? Math.max(0, pair.startedAt - due) : 0;
      const pairUs = started ? (pair.finishedAt - pair.startedAt) * 1000 : -1;
      if (pair.outcome === 'established') {
        const lagUs = lagMs * 1000;
        stats.recordEstablished(
          lagUs + Math.max(pair.establishUs[0], pair.establishUs[1]),
          lagUs + pairUs,
          pair.closeOutcome ?? 'fin',
        );
        summary.established += 1;
        counts.established += 1;
      } else if (pair.outcome === 'failed') {
        const code = pair.error ?? 'EUNKNOWN';
        stats.recordFailed(code);
        summary.failed += 1;
        summary.errors[code] = (summary.errors[code] ?? 0) + 1;
        counts.failed += 1;
      } else {
        stats.recordCancelled();
        summary.cancelled += 1;
        counts.cancelled += 1;
      }
      if (log) {
        const endpoints = pairEndpointsOf(agents, flight.link, flight.firstIndex + index, options.ports);
        const line = formatPairRecord({
          id,
          a: endpoints.a,
          b: endpoints.b,
          outcome: pair.outcome,
          error: pair.outcome === 'established' ? null : (pair.error ?? 'EUNKNOWN'),
          attempts: pair.attempts,
          establishUs: [pair.establishUs[0], pair.establishUs[1]],
          bytesVerified: pair.bytesVerified,
          close: options.close,
          closeOutcome: pair.closeOutcome ?? null,
          startLagUs: lagMs * 1000,
          pairUs,
        });
        // The distributed fields: which agents ran the sides, and the public endpoints they dialled.
        lines.push(
          `${line.slice(0, -2)},"agents":["${nameA}","${nameB}"],"mapped":["${endpoints.mapped[0]}","${endpoints.mapped[1]}"]}\n`,
        );
      }
    }
    appendLog(lines.join(''), lines.length);
    dispatch();
  };

  const maybeJoin = (flight: Flight) => {
    if (flight.halves[0] && flight.halves[1]) join(flight);
  };

  // Results: each agent's half of a batch.
  clients.forEach((client, index) => {
    client.onResult = (message) => {
      const flight = flights.get(message.batch);
      if (!flight) return;
      if (flight.link.a !== index && flight.link.b !== index) return;
      const side = flight.link.a === index ? 0 : 1;
      if (flight.halves[side]) return;
      flight.halves[side] =
        message.records.length === flight.count * RECORD_FIELDS
          ? { records: message.records, errors: message.errors }
          : { lost: `batch ${flight.batch} came back with the wrong number of records` };
      maybeJoin(flight);
    };
    client.onLost = (reason) => loseAgent(index, reason);
  });

  const loseAgent = (index: number, reason: string) => {
    if (lost.has(index)) return;
    const name = agents[index]?.name ?? '?';
    lost.set(index, { reason, atMs: epochNow() - t0 });
    const affected = [...flights.values()].filter(
      (flight) => flight.link.a === index || flight.link.b === index,
    );
    const live = links.filter(liveLink).length;
    process.stderr.write(
      `\nstress: agent ${name} lost (${reason}): its ${affected.reduce((sum, flight) => sum + flight.count, 0)} pairs in flight fail as ${AGENT_LOST}; ${live} of ${links.length} links left\n`,
    );
    // Its halves will not come: their pairs fail; the other agents cancel their sides of them now.
    const abandon = new Map<number, number[]>();
    for (const flight of affected) {
      const side = flight.link.a === index ? 0 : 1;
      if (!flight.halves[side]) flight.halves[side] = { lost: reason };
      const other = side === 0 ? flight.link.b : flight.link.a;
      if (!flight.halves[1 - side] && !lost.has(other))
        abandon.set(other, [...(abandon.get(other) ?? []), flight.batch]);
    }
    for (const [other, batches] of abandon) clients[other]?.send({ type: 'abandon', batches });
    for (const flight of affected) maybeJoin(flight);
    dispatch();
  };

  const onStop = () => {
    if (stopped) return;
    stopped = true;
    for (const [index, client] of clients.entries()) if (!lost.has(index)) client.send({ type: 'stop' });
    dispatch();
  };
  const halt = onStop;
  stop.addEventListener('abort', onStop, { once: true });

  const dispatch = () => {
    clearTimeout(wake);
    wake = undefined;
    const liveLinks = links.filter(liveLink);
    while (!stopped && liveLinks.length && flights.size < maxOutstanding && nextId < limit) {
      const now = epochNow();
      if (now >= endAt) break;
      if (inFlightPairs >= options.concurrency) break;
      if (options.rate !== undefined) {
        // Open loop: hand a batch out shortly before its first pair is due.
        const due = t0 + (nextId * 1000) / options.rate;
        if (due - now > 50) {
          wake = setTimeout(dispatch, due - now - 50);
          break;
        }
      }
      // Guided: batches shrink towards the end, so no link idles while another finishes a big one;
      // not held pairs, which stay out for the hold: smaller batches would leave some for after it.
      const remaining = limit - nextId;
      const count = Math.min(
        remaining,
        size,
        options.concurrency - inFlightPairs,
        options.holdMs > 0 ? size : Math.max(1, Math.ceil(remaining / (liveLinks.length * 4))),
      );
      const link = liveLinks[linkTurn % liveLinks.length] as Link;
      linkTurn += 1;
      const flight: Flight = {
        batch: nextBatch,
        link,
        firstId: nextId,
        firstIndex: nextIndex[link.link] as number,
        count,
        halves: [undefined, undefined],
        sentAt: performance.now(),
      };
      nextBatch += 1;
      nextId += count;
      nextIndex[link.link] = flight.firstIndex + count;
      inFlightPairs += count;
      (linkSummaries[link.link] as LinkSummary).planned += count;
      (sidesOf[link.a] as { a: number }).a += count;
      (sidesOf[link.b] as { b: number }).b += count;
      flights.set(flight.batch, flight);
      const message = {
        type: 'batch' as const,
        batch: flight.batch,
        link: link.link,
        firstId: flight.firstId,
        firstIndex: flight.firstIndex,
        count,
      };
      clients[link.a]?.send(message);
      clients[link.b]?.send(message);
    }
    if (flights.size === 0) {
      const more = !stopped && links.some(liveLink) && nextId < limit && epochNow() < endAt;
      if (!more) finished();
      else if (!wake) wake = setTimeout(dispatch, Math.max(1, Math.min(50, endAt - epochNow())));
    } else if (!wake && options.durationMs !== undefined && !stopped) {
      // Nothing else wakes the loop when --duration ends while batches are out.
      wake = setTimeout(dispatch, Math.max(1, Math.min(50, endAt - epochNow())));
    }
  };

  // A batch long overdue (its agent still answers pings but never sends it back) counts as lost.
  const stallCheck = setInterval(() => {
    const now = performance.now();
    for (const flight of [...flights.values()]) {
      if (now - flight.sentAt < options.timeoutMs + holdAllowanceMs + STALL_GRACE_MS) continue;
      flight.halves.forEach((half, side) => {
        if (!half) flight.halves[side] = { lost: `batch ${flight.batch} never came back` };
      });
      maybeJoin(flight);
    }
  }, 1000);
  stallCheck.unref();

  let progress: ProgressTracker | undefined;
  if (!options.quiet) {
    progress = new ProgressTracker({
      total: options.pairs,
      durationMs: options.durationMs,
      read: () => counts,
    });
    progress.start();
  }

  // Progress over time for the report, sampled from the joined counts as a local run samples its own.
  const timeline = new TimelineSampler(() => counts);
  const cpuAtStart = process.cpuUsage();
  holdWatch?.start();
  timeline.start();
  for (const client of clients) client.begin(t0);
  if (stop.aborted) onStop();
  dispatch();
  await allJoined;
  clearInterval(stallCheck);
  clearTimeout(wake);
  const hold = holdWatch?.stop();
  stop.removeEventListener('abort', onStop);
  progress?.stop();
  const samples = timeline.stop();
  const durationMs = epochNow() - t0;
  const cpuUsed = process.cpuUsage(cpuAtStart);
  const interrupted = stop.aborted;

  // Planned but never handed out (a stop, or no live link left): not started, one range.
  const planned = (stopped || lost.size > 0) && options.pairs !== undefined ? limit : nextId;
  const notStarted = closeNotStarted(stats, notStartedIds, nextId, planned);
  appendLog(formatNotStartedRecord(notStarted), 0);
  if (outputError && input.log?.regular) {
    try {
      trimTornLine(input.log.fd);
    } catch {}
  }
  if (input.afterLastPair) await input.afterLastPair();

  // Each agent's side statistics, exactly merged into one per agent.
  await Promise.all(clients.map((client, index) => (lost.has(index) ? undefined : client.finish(10_000))));
  const sideStats = clients.map((client) =>
    client.stats ? mergeStats(new PairStats(), client.stats) : undefined,
  );
  // --hold: every side counted the peer's keepalives it checked; the pairs' total is theirs.
  for (const client of clients) stats.keepalivesVerified += client.keepalivesVerified;
  const infos = clients.map((client) => client.info);
  const sockets = infos.some((info) => info?.sockets === 'net') ? 'net' : options.sockets;
  const socketsReason = infos.find((info) => info?.socketsReason)?.socketsReason;
  const base: StressResult = aggregateResult(stats, {
    mode: input.mode ?? 'lab',
    modeReason: input.modeReason,
    workers: infos.reduce((sum, info) => sum + (info?.workers ?? 0), 0),
    concurrency: Math.min(options.concurrency, options.pairs ?? Number.POSITIVE_INFINITY),
    sockets,
    ...(socketsReason ? { socketsReason } : {}),
    warmupPairsPerWorker: 0,
    payloadBytes: options.payload,
    close: options.close,
    rate: options.rate,
    timeoutMs: options.timeoutMs,
    planned,
    durationMs,
    workerCrashes: 0,
    interrupted,
    outputError,
    notStartedIds: notStarted,
    peakRssBytes: Math.max(0, ...clients.map((client) => client.peakRssBytes ?? 0)),
    log: input.log?.path,
    timeline: samples,
    // Both sides connect when their batch arrives; how the SYNs meet is the routers' doing.
    open: { mode: 'one-sided' },
    ...(hold ? { hold: { holdMs: options.holdMs, keepaliveMs: options.keepaliveMs, ...hold } } : {}),
  });
  stats.destroy();
  // Pairs never handed out count as not started on the links that would have had them: the run's total only.
  const result: DistributedResult = {
    ...base,
    coordinatorCpu: { userMs: Math.round(cpuUsed.user / 1000), systemMs: Math.round(cpuUsed.system / 1000) },
    agents: clients.map((client, index) =>
      breakdownOf(client, sideStats[index], sidesOf[index] as { a: number; b: number }, lost.get(index)),
    ),
    links: linkSummaries,
  };
  for (const side of sideStats) side?.destroy();
  return result;
}
