/**
 * A wave of pairs over the held link, inside a worker thread (--open crossed and skew). A batch of
 * the link layout is one wave: its pairs share one address pair of the link (lib/core/heldLink.ts), so
 * their SYNs wait in the same two neighbour queues, and this thread's own `ip -batch` child releases
 * them when the wave says so (no round trip through the main thread; its acknowledgements come back
 * in order).
 *
 * crossed: every pair connects both sides, then one release sends all the SYNs at once: each meets
 * its peer in SYN_SENT, and both sides pass SYN_RECEIVED.
 *
 * skew: the A sides connect; B sides connect `skewMs` after A's; the link delivers what was sent every
 * `delayMs` (release, then hold again, acknowledged), counted from the first A connect, until every
 * pair is open; then it stays released. A B that connects before the first delivery crosses with A's
 * SYN; a later one finds A's SYN already delivered: dropped (A waits in SYN_SENT, B's SYN opens it
 * one-sided) or answered with RST (A connects again, through the link, until a delivery carries both).
 * Connects never happen while a delivery is under way: they wait for its acknowledgement, so every
 * SYN belongs to exactly one delivery.
 *
 * When the batch is over the address pair's entries go (holdCommands): held again for its next use.
 */
import { performance } from 'node:perf_hooks';
import { holdCommands, IpBatch, releaseCommands } from '../core/heldLink.ts';
import type { SandboxPair, WaveGate } from './sandboxPair.ts';
import type { RunConfig, SocketKind } from './types.ts';

let link: IpBatch | undefined;

/** This thread's `ip -batch` child, started with its first wave. */
function linkControl(): IpBatch {
  link ??= new IpBatch((message) => process.stderr.write(`stress: held link: ${message}\n`));
  return link;
}

/** Timers fire a millisecond late or more: sleep until about then, then poll (as runBatch's wakeAt). */
const POLL_WITHIN_MS = 1.5;

export class HeldWave implements WaveGate {
  private readonly pairs: SandboxPair[] = [];
  /** Pairs not open yet and not over. */
  private opening = 0;
  /** A delivery (release, hold again) is under way: connects wait for its acknowledgement. */
  private delivering = false;
  /** The entries are permanent: everything passes until the wave ends. */
  private released = false;
  private finished = false;
  private readonly waiting: SandboxPair[] = [];
  private readonly waitingSides: (0 | 1)[] = [];
  private bStarted = false;
  private bDueAt = 0;
  private nextDeliveryAt = 0;
  private timer: NodeJS.Timeout | NodeJS.Immediate | undefined;
  private readonly link = linkControl();
  private readonly onWake = () => this.wake();
  private readonly onDelivered = () => this.delivered();
  private readonly onFlush = () => this.flushWaiting();

  constructor(
    /** The held-link address pair of the wave. */
    readonly index: number,
    private readonly config: Pick<RunConfig, 'open' | 'skewMs' | 'delayMs'>,
    private readonly sockets: SocketKind,
  ) {}

  /** Puts a pair in the wave (before start). */
  add(pair: SandboxPair): void {
    this.pairs.push(pair);
    this.opening += 1;
  }

  /** Connects the wave's pairs and starts releasing them. */
  start(): void {
    if (this.config.open === 'crossed') {
      for (const pair of this.pairs) pair.start();
      // net.Socket connects on the next tick: release after it.
      if (this.sockets === 'handle') this.release();
      else this.timer = setImmediate(this.onWake);
      return;
    }
    const startedAt = performance.now();
    for (const pair of this.pairs) pair.startSide(0);
    // B's connects and the deliveries count from the same instant, the wave's first connect: however
    // long A's connects take to issue, B goes with the first delivery exactly when skew <= delay.
    this.bDueAt = startedAt + this.config.skewMs;
    this.nextDeliveryAt = startedAt + this.config.delayMs;
    this.schedule();
  }

  /** WaveGate: a side connects now, or once the delivery under way is acknowledged. */
  connect(pair: SandboxPair, side: 0 | 1): void {
    this.waiting.push(pair);
    this.waitingSides.push(side);
    // Not inside the caller's event (a refused socket is still being torn down): on the next turn.
    if (!this.delivering && this.waiting.length === 1) setImmediate(this.onFlush);
  }

  /** WaveGate: one pair fewer waits for the link. */
  opened(): void {
    this.opening -= 1;
    if (this.opening === 0 && this.config.open === 'skew' && !this.delivering) this.releaseForGood();
  }

  /** The batch is over: hold the address pair again for its next use. */
  finish(): void {
    this.finished = true;
    this.cancelTimer();
    // A delivery under way ends with the entries gone anyway.
    if (!this.delivering) this.link.run(holdCommands(this.index));
  }

  private release(): void {
    this.released = true;
    this.link.run(releaseCommands(this.index));
  }

  /** skew: every pair open (or over): the link passes everything from now on. */
  private releaseForGood(): void {
    if (this.released || this.finished) return;
    this.cancelTimer();
    this.release();
  }

  private cancelTimer(): void {
    const timer = this.timer;
    if (!timer) return;
    this.timer = undefined;
    if ('refresh' in timer) clearTimeout(timer);
    else clearImmediate(timer as NodeJS.Immediate);
  }

  private schedule(): void {
    if (this.finished || this.released) return;
    const next = this.bStarted ? this.nextDeliveryAt : Math.min(this.bDueAt, this.nextDeliveryAt);
    const delay = next - performance.now();
    this.timer =
      delay > POLL_WITHIN_MS ? setTimeout(this.onWake, delay - POLL_WITHIN_MS) : setImmediate(this.onWake);
  }

  private wake(): void {
    this.timer = undefined;
    if (this.finished) return;
    if (this.config.open === 'crossed') {
      this.release();
      return;
    }
    if (this.released || this.delivering) return;
    const now = performance.now();
    // B's connects before a delivery due at the same time: they go with it.
    if (!this.bStarted && now >= this.bDueAt && this.bDueAt <= this.nextDeliveryAt) {
      this.bStarted = true;
      for (const pair of this.pairs) pair.startSide(1);
    }
    if (now >= this.nextDeliveryAt) {
      this.delivering = true;
      this.link.sync(releaseCommands(this.index) + holdCommands(this.index), this.onDelivered);
      return;
    }
    this.schedule();
  }

  private delivered(): void {
    this.delivering = false;
    if (this.finished) return;
    this.nextDeliveryAt += this.config.delayMs;
    this.flushWaiting();
    if (this.opening === 0) this.releaseForGood();
    else this.schedule();
  }

  private flushWaiting(): void {
    if (this.delivering || this.finished) return;
    const count = this.waiting.length;
    for (let index = 0; index < count; index += 1)
      (this.waiting[index] as SandboxPair).connectSide(this.waitingSides[index] as 0 | 1);
    this.waiting.length = 0;
    this.waitingSides.length = 0;
  }
}
