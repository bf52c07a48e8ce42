/**
 * stress.ts --trace: what to trace for a stress address plan, the planned pairs to classify, and the
 * classification written into the NDJSON pair log.
 */
import fs from 'node:fs';
import readline from 'node:readline';
import type { PairTraceOptions } from '../trace/plannedPairTrace.ts';
import type { PairKinds, PlannedPair } from '../trace/types.ts';
import { loopbackAddress, pairEndpoints } from './planPairs.ts';
import type { AddressPlan } from './types.ts';

/**
 * Adds "openKind" and "closeKinds" to each record of an NDJSON pair log (records carry their "id"),
 * rewriting the file through a temporary one.
 */
export async function annotatePairLog(file: string, kinds: ReadonlyMap<number, PairKinds>): Promise<void> {
  const temporary = `${file}.trace-${process.pid}.tmp`;
  const output = fs.createWriteStream(temporary);
  try {
    const lines = readline.createInterface({
      input: fs.createReadStream(file),
      crlfDelay: Number.POSITIVE_INFINITY,
    });
    for await (const line of lines) {
      if (!line.trim()) continue;
      const record = JSON.parse(line) as { id: number };
      const pair = kinds.get(record.id);
      const annotated = { ...record, openKind: pair?.open ?? null, closeKinds: pair?.close ?? null };
      if (!output.write(`${JSON.stringify(annotated)}\n`))
        await new Promise<void>((resolve) => output.once('drain', () => resolve()));
    }
    await new Promise<void>((resolve, reject) => {
      output.once('error', reject);
      output.end(() => resolve());
    });
    fs.renameSync(temporary, file);
  } catch (error) {
    output.destroy();
    fs.rmSync(temporary, { force: true });
    throw error;
  }
}

/** The planned pairs 0..count-1 of a stress address plan. */
export function* pairsOfPlan(plan: AddressPlan, count: number): Generator<PlannedPair> {
  for (let id = 0; id < Math.min(count, plan.capacity); id += 1) yield { id, ...pairEndpoints(plan, id) };
}

/**
 * What to trace for a stress plan: its ports in the kernel filter and, when the run uses few address
 * pairs (pairs known up front), those addresses in the user-side filter.
 */
export function traceOptionsForPlan(plan: AddressPlan, pairs: number | undefined): PairTraceOptions {
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
