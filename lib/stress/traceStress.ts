/**
 * stress.ts --trace: what to trace for a stress address plan, the planned pairs to classify, and the
 * classification written into the NDJSON pair log.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { describeFileError, OutputFile } from '../core/outputFile.ts';
import type { PairTraceOptions } from '../trace/plannedPairTrace.ts';
import type { PairKinds, PlannedPair } from '../trace/types.ts';
import { loopbackAddress, pairEndpoints } from './planPairs.ts';
import type { AddressPlan, IdRange } from './types.ts';

/** Everything `fd` holds from offset `from`, copied to `to`. */
function copyDescriptor(fd: number, to: number, from = 0): void {
  const chunk = Buffer.alloc(1 << 20);
  for (let position = from; ; ) {
    const read = fs.readSync(fd, chunk, 0, chunk.length, position);
    if (read === 0) return;
    let written = 0;
    while (written < read) written += fs.writeSync(to, chunk, written, read - written);
    position += read;
  }
}

/**
 * Adds "openKind" and "closeKinds" to each pair record of the NDJSON pair log (records carry their
 * "id"; the not-started record is kept as it is). The log is written through its own descriptor, never
 * replaced: its records are first copied to a private temporary file, then read back from there. If
 * that fails the log keeps the records as the run wrote them, and the error says so.
 */
export async function annotatePairLog(
  logOrPath: OutputFile | string,
  kinds: ReadonlyMap<number, PairKinds>,
): Promise<void> {
  if (typeof logOrPath === 'string') {
    const fd = fs.openSync(logOrPath, fs.constants.O_RDWR | fs.constants.O_APPEND);
    const log = new OutputFile('--log', logOrPath, fd, fs.fstatSync(fd).isFile(), false);
    try {
      return await annotatePairLog(log, kinds);
    } finally {
      log.close();
    }
  }
  const log = logOrPath;
  if (!log.regular)
    throw new Error(`${log.option} ${log.path} is not a regular file: cannot add the trace kinds`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'simopen-stress-log-'));
  const copyPath = path.join(dir, 'records.ndjson');
  const copy = fs.openSync(copyPath, 'w+', 0o600);
  let truncated = false;
  // Removed at the end unless it holds the only copy of the records (restoring them failed).
  let keepCopy = false;
  try {
    try {
      copyDescriptor(log.fd, copy);
    } catch (error) {
      throw new Error(
        `cannot copy the records aside to add the trace kinds (${describeFileError(error)}); the log keeps them as the run wrote them`,
      );
    }
    fs.ftruncateSync(log.fd, 0);
    truncated = true;
    const lines = readline.createInterface({
      input: fs.createReadStream(copyPath, { fd: fs.openSync(copyPath, 'r') }),
      crlfDelay: Number.POSITIVE_INFINITY,
    });
    let pending: string[] = [];
    const flush = () => {
      log.write(pending.join(''));
      pending = [];
    };
    for await (const line of lines) {
      if (!line.trim()) continue;
      const record = JSON.parse(line) as { id?: number };
      if (record.id === undefined) pending.push(`${line}\n`);
      else {
        const pair = kinds.get(record.id);
        const annotated = { ...record, openKind: pair?.open ?? null, closeKinds: pair?.close ?? null };
        pending.push(`${JSON.stringify(annotated)}\n`);
      }
      if (pending.length >= 4096) flush();
    }
    flush();
  } catch (error) {
    if (!truncated) throw error;
    // Put the records back as the run wrote them; if even that fails, say where they are.
    try {
      fs.ftruncateSync(log.fd, 0);
      copyDescriptor(copy, log.fd);
    } catch (restoreError) {
      keepCopy = true;
      throw new Error(
        `adding the trace kinds failed (${describeFileError(error)}), and so did restoring the log (${describeFileError(restoreError)}): the records as the run wrote them are in ${copyPath}`,
      );
    }
    throw new Error(
      `adding the trace kinds failed (${describeFileError(error)}); the log keeps the records as the run wrote them`,
    );
  } finally {
    fs.closeSync(copy);
    if (!keepCopy) fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** The planned pairs 0..count-1 of a stress address plan, but those that never started (sorted, merged ranges). */
export function* pairsOfPlan(
  plan: AddressPlan,
  count: number,
  notStarted: readonly IdRange[] = [],
): Generator<PlannedPair> {
  const end = Math.min(count, plan.capacity);
  let range = 0;
  for (let id = 0; id < end; id += 1) {
    while (range < notStarted.length && (notStarted[range] as IdRange)[1] < id) range += 1;
    const skip = notStarted[range];
    if (skip && skip[0] <= id) {
      id = skip[1];
      continue;
    }
    yield { id, ...pairEndpoints(plan, id) };
  }
}

/**
 * What to trace for a stress plan: its ports in the kernel filter and, when the run uses few address
 * pairs (pairs known up front), those addresses in the user-side filter.
 */
export function traceOptionsForPlan(plan: AddressPlan, pairs: number | undefined): PairTraceOptions {
  if (plan.layout === 'link') return linkTraceOptions(plan, pairs);
  // Pair n uses port first + n % portCount: a run of fewer pairs than ports uses the low ports only.
  const portsUsed = pairs === undefined ? plan.portCount : Math.min(pairs, plan.portCount);
  const portRange = { first: plan.ports.first, last: plan.ports.first + portsUsed - 1 };
  const rounds = pairs === undefined ? Number.POSITIVE_INFINITY : Math.ceil(pairs / plan.portCount);
  if (rounds > 64) return { portRange };
  const hosts: string[] = [];
  for (let round = 0; round < rounds; round += 1) {
    const index = (plan.roundOffset + round) % plan.rounds;
    hosts.push(loopbackAddress(2 * index), loopbackAddress(2 * index + 1));
  }
  return { portRange, hosts };
}

/** Waves of a held-link plan looked at one by one to narrow the trace; beyond, all its ports are traced. */
const LINK_TRACE_WAVES_MAX = 1 << 16;

/** The held link: the ports of the waves' blocks and, for a few waves, their address pairs. */
function linkTraceOptions(plan: AddressPlan, pairs: number | undefined): PairTraceOptions {
  const waves =
    pairs === undefined ? Number.POSITIVE_INFINITY : Math.ceil(Math.min(pairs, plan.capacity) / plan.wave);
  if (waves > LINK_TRACE_WAVES_MAX) return { portRange: { first: plan.ports.first, last: plan.ports.last } };
  let first = Number.POSITIVE_INFINITY;
  let last = 0;
  const hosts: string[] = [];
  for (let wave = 0; wave < waves; wave += 1) {
    const { a, b } = pairEndpoints(plan, wave * plan.wave);
    first = Math.min(first, a.port);
    last = Math.max(last, a.port + plan.wave - 1);
    if (waves <= 32) hosts.push(a.host, b.host);
  }
  return { portRange: { first, last }, ...(hosts.length ? { hosts } : {}) };
}
