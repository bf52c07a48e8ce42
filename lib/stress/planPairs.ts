/**
 * The address plan of a stress run: which local endpoints the two sides of pair N use.
 *
 * Pairs are spread over the ports first and over loopback addresses second: consecutive pairs (the
 * ones in flight together) use different ports, so no bind hash chain grows long, and pair N and
 * pair N + ports use a fresh address pair. Every (address, port) is used by one side of one pair
 * only, so no 4-tuple is reused during a run, however long earlier connections linger in TIME_WAIT.
 *
 * The link layout (--open crossed and skew) puts pairs in waves instead: the `wave` consecutive ids of
 * a wave share one address pair of the held link (their SYNs are held and released together) on a
 * block of `wave` ports; consecutive waves use consecutive address pairs, and once every address pair
 * has had a wave the next block of ports starts. Pure: no sockets, no clock.
 */
import { UsageError } from '../core/errors.ts';
import { LINK_ADDRESS_PAIRS, linkAddress } from '../core/heldLink.ts';
import type { PortRange } from '../core/types.ts';
import type { AddressPlan, PairEndpoints, PlanLayout } from './types.ts';

export interface PlanOptions {
  ports: PortRange;
  /** How many addresses to use, from the start of the pool (at least 2). */
  addresses?: number;
  /** Start at this address pair (link: this wave slot; wraps); a random one keeps runs on a shared loopback apart. */
  roundOffset?: number;
  /** Default loopback. */
  layout?: PlanLayout;
  /** link: pairs per wave (at most the port count). */
  wave?: number;
}

/**
 * 127.a.b.c with c in 1..254 and (a, b) from (0, 1) on: 127.0.0.x, where 127.0.0.1 lives and other
 * programs listen, is left alone, as are the .0 and .255 of each /24.
 */
export const LOOPBACK_ADDRESS_COUNT = 65_535 * 254;

/** Runs use the pool but its last address pair, which is kept for warm-up pairs (warmupPlan). */
export const PLAN_ADDRESS_COUNT = LOOPBACK_ADDRESS_COUNT - 2;

/** Held-link address pairs kept for warm-up waves (the last ones); runs use the others. */
export const LINK_WARMUP_PAIRS = 256;
export const LINK_RUN_PAIRS = LINK_ADDRESS_PAIRS - LINK_WARMUP_PAIRS;

/** The index-th address of the loopback pool. */
export function loopbackAddress(index: number): string {
  if (!Number.isInteger(index) || index < 0 || index >= LOOPBACK_ADDRESS_COUNT)
    throw new RangeError(`loopback address index ${index} is out of range 0..${LOOPBACK_ADDRESS_COUNT - 1}`);
  const block = 1 + Math.floor(index / 254);
  return `127.${block >> 8}.${block & 255}.${1 + (index % 254)}`;
}

/** Builds the plan and checks that it holds `pairs` (undefined: no fixed count, as with --duration). */
export function planPairs(pairs: number | undefined, options: PlanOptions): AddressPlan {
  const { first, last } = options.ports;
  if (!Number.isInteger(first) || !Number.isInteger(last) || first < 1 || last > 65_535 || first > last)
    throw new UsageError(`--ports: ${first}-${last} is not a port range within 1..65535`);
  const addresses = options.addresses ?? PLAN_ADDRESS_COUNT;
  if (!Number.isInteger(addresses) || addresses < 2 || addresses > PLAN_ADDRESS_COUNT)
    throw new UsageError(`--addresses: ${addresses} is out of range 2..${PLAN_ADDRESS_COUNT}`);
  const portCount = last - first + 1;
  const layout = options.layout ?? 'loopback';
  if (layout === 'link') {
    const wave = options.wave ?? 1;
    if (!Number.isInteger(wave) || wave < 1) throw new RangeError(`wave ${wave} is not a positive integer`);
    if (wave > portCount)
      throw new UsageError(
        `--ports: ${portCount} ports are fewer than a wave of ${wave} pairs (pairs in flight per worker / 2); widen --ports or lower --concurrency`,
      );
    const rounds = Math.min(Math.floor(addresses / 2), LINK_RUN_PAIRS);
    const slots = rounds * Math.floor(portCount / wave);
    const capacity = slots * wave;
    if (pairs !== undefined && pairs > capacity)
      throw new UsageError(
        `--pairs ${pairs} exceeds what the address plan holds without reusing an endpoint: ${capacity} (${rounds} address pairs x ${Math.floor(portCount / wave)} blocks of ${wave} ports); widen --ports or --addresses`,
      );
    return {
      ports: { first, last },
      portCount,
      rounds,
      roundOffset: (options.roundOffset ?? 0) % slots,
      capacity,
      layout,
      wave,
    };
  }
  const rounds = Math.floor(addresses / 2);
  const capacity = portCount * rounds;
  if (pairs !== undefined && pairs > capacity)
    throw new UsageError(
      `--pairs ${pairs} exceeds what the address plan holds without reusing an endpoint: ${capacity} (${portCount} ports x ${rounds} address pairs); widen --ports or --addresses`,
    );
  const roundOffset = (options.roundOffset ?? 0) % rounds;
  return { ports: { first, last }, portCount, rounds, roundOffset, capacity, layout, wave: 0 };
}

/**
 * Throwaway pairs that warm a worker up before the clock starts (JIT, allocator, kernel caches) use the
 * pool's last address pair, which no run plan uses; only ids 0..portCount-1 (warmupCapacity) stay on it.
 *
 * Built from the run's own plan, with the same keys and the same `capacity` value: the object crosses to
 * the worker by structured clone, and V8 gives it the same hidden class only if every field has the same
 * representation. A warm-up plan of its own would have a small-integer capacity where the run plan's is
 * a double: the first run plan would then deprecate the warmed class and deoptimize every function that
 * inlined pairEndpoints (the whole per-pair path), which recompiles while the clock runs
 * (docs/design.md, the warm-up).
 */
export function warmupPlan(plan: AddressPlan): AddressPlan {
  // The whole pool, started at the reserved address pairs: warmupCapacity keeps the ids within them.
  const rounds = plan.layout === 'link' ? LINK_ADDRESS_PAIRS : LOOPBACK_ADDRESS_COUNT / 2;
  return {
    ports: { first: plan.ports.first, last: plan.ports.last },
    portCount: plan.portCount,
    rounds,
    roundOffset: plan.layout === 'link' ? LINK_RUN_PAIRS : rounds - 1,
    capacity: plan.capacity,
    layout: plan.layout,
    wave: plan.wave,
  };
}

/** Warm-up pair ids below this stay on the warm-up address pairs (loopback: one pair, one id per port). */
export function warmupCapacity(plan: AddressPlan): number {
  return plan.layout === 'link' ? LINK_WARMUP_PAIRS * plan.wave : plan.portCount;
}

/** link: the wave slot of pair `id`: which address pair (index) and which block of ports. */
function waveSlot(plan: AddressPlan, id: number): number {
  const slots = plan.rounds * Math.floor(plan.portCount / plan.wave);
  return (plan.roundOffset + Math.floor(id / plan.wave)) % slots;
}

/** link: the held-link address pair (0..65535) of the wave that pair `id` belongs to. */
export function waveAddressIndex(plan: AddressPlan, id: number): number {
  return waveSlot(plan, id) % plan.rounds;
}

/** The endpoints of pair `id` (0-based). Side A and side B use the same port on two addresses. */
export function pairEndpoints(plan: AddressPlan, id: number): PairEndpoints {
  if (!Number.isInteger(id) || id < 0 || id >= plan.capacity)
    throw new RangeError(`pair ${id} is outside the plan (capacity ${plan.capacity})`);
  if (plan.layout === 'link') {
    const slot = waveSlot(plan, id);
    const index = slot % plan.rounds;
    const port = plan.ports.first + Math.floor(slot / plan.rounds) * plan.wave + (id % plan.wave);
    return { a: { host: linkAddress(0, index), port }, b: { host: linkAddress(1, index), port } };
  }
  const port = plan.ports.first + (id % plan.portCount);
  const round = (plan.roundOffset + Math.floor(id / plan.portCount)) % plan.rounds;
  return {
    a: { host: loopbackAddress(2 * round), port },
    b: { host: loopbackAddress(2 * round + 1), port },
  };
}
