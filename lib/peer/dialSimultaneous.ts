/**
 * The simultaneous-open dialer: connect() from a fixed local address and port to a peer that does
 * the same towards us, retrying until the two connects meet. Nobody listens.
 */
import { lookup } from 'node:dns/promises';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { formatEndpoint, isLocalAddress } from '../core/endpoint.ts';
import type { DialOptions, DialResult, PreparedDial } from './types.ts';

/** Why a dial failed. `code` is a Node errno code, or one of ours: EDEADLINE, ESELFCONNECT, EINVAL, ABORT_ERR. */
export class DialError extends Error {
  override name = 'DialError';
  constructor(
    message: string,
    readonly code: string,
    readonly attempts: number,
    readonly errors: Record<string, number>,
    readonly elapsedMs: number,
  ) {
    super(message);
  }
}

/** Errors that mean "the peer is not there yet" (or its SYN has not crossed ours): retry. */
export const RETRYABLE_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EHOSTDOWN',
  'ENETDOWN',
  'EPIPE',
]);

/** How often, and after how long, a connect that finds its 4-tuple still taken is tried again. */
const BUSY_TUPLE_RETRIES = 3;
const BUSY_TUPLE_WAIT_MS = 10;

const WILDCARDS = new Set(['0.0.0.0', '::']);

async function resolveHost(host: string, family?: 4 | 6): Promise<{ address: string; family: 4 | 6 }> {
  const ipFamily = net.isIP(host);
  if (ipFamily === 4 || ipFamily === 6) return { address: host, family: ipFamily };
  const result = await lookup(host, family ? { family } : {});
  return { address: result.address, family: result.family === 6 ? 6 : 4 };
}

function fail(
  message: string,
  code: string,
  attempts = 0,
  errors: Record<string, number> = {},
  elapsedMs = 0,
) {
  return new DialError(message, code, attempts, errors, elapsedMs);
}

function describeErrors(errors: Record<string, number>): string {
  const entries = Object.entries(errors);
  return entries.length ? entries.map(([code, count]) => `${code} x${count}`).join(', ') : 'none';
}

function validPort(port: number): boolean {
  return Number.isInteger(port) && port >= 1 && port <= 65535;
}

/**
 * Validates and resolves a dial's endpoints without opening a socket: invalid ports or hosts, mixed
 * families, a local address this host does not have, and a self-connect fail here (DialError).
 */
export async function prepareDial(options: Pick<DialOptions, 'local' | 'remote'>): Promise<PreparedDial> {
  const { remote } = options;
  if (!validPort(remote.port)) throw fail(`invalid remote port ${remote.port} (1..65535)`, 'EINVAL');
  if (!validPort(options.local.port))
    throw fail(`invalid local port ${options.local.port} (1..65535)`, 'EINVAL');
  let remoteResolved: { address: string; family: 4 | 6 };
  try {
    const localFamily = options.local.host ? net.isIP(options.local.host) : 0;
    remoteResolved = await resolveHost(
      remote.host,
      localFamily === 4 || localFamily === 6 ? localFamily : undefined,
    );
  } catch (error) {
    throw fail(
      `cannot resolve remote host '${remote.host}': ${(error as NodeJS.ErrnoException).code ?? error}`,
      'EINVAL',
    );
  }
  const localHost = options.local.host ?? (remoteResolved.family === 6 ? '::' : '0.0.0.0');
  const family = net.isIP(localHost);
  if (family !== 4 && family !== 6) throw fail(`local host '${localHost}' must be an IP address`, 'EINVAL');
  if (family !== remoteResolved.family)
    throw fail(
      `local ${localHost} and remote ${remoteResolved.address} are of different IP families`,
      'EINVAL',
    );
  if (!WILDCARDS.has(localHost) && !isLocalAddress(localHost))
    throw fail(`local address ${localHost} is not an address of this host`, 'EADDRNOTAVAIL');

  const local = { host: localHost, port: options.local.port };
  const target = { host: remoteResolved.address, port: remote.port };
  // Connecting to our own endpoint would "succeed" as a TCP self-connect: that is not a peer.
  const sameHost = target.host === local.host || (WILDCARDS.has(local.host) && isLocalAddress(target.host));
  if (sameHost && target.port === local.port)
    throw fail(
      `remote ${formatEndpoint(target)} is this dialer's own endpoint (a self-connect, not a peer)`,
      'ESELFCONNECT',
    );
  return { local, target, family };
}

/**
 * Opens a TCP connection by simultaneous open. Binds local.host:local.port on every attempt
 * (Node binds with SO_REUSEADDR, so the port can be rebound at once) and connects to remote until
 * the peer's connect meets ours, the deadline passes, or the signal aborts.
 */
export async function dialSimultaneous(options: DialOptions): Promise<DialResult> {
  const { signal } = options;
  const retryIntervalMs = options.retryIntervalMs ?? 0;
  const deadlineMs = options.deadlineMs ?? 30_000;
  if (!(retryIntervalMs >= 0) || !(deadlineMs > 0))
    throw fail('invalid retry interval or deadline', 'EINVAL');
  if (signal?.aborted) throw fail('dial aborted before the first attempt', 'ABORT_ERR');
  const { local, target, family: localFamily } = await prepareDial(options);

  const started = performance.now();
  const errors: Record<string, number> = {};
  let attempts = 0;

  return new Promise<DialResult>((resolve, reject) => {
    let socket: net.Socket | undefined;
    let cancelRetry: (() => void) | undefined;
    let settled = false;
    let busyInARow = 0;

    const elapsed = () => performance.now() - started;
    const deadlineTimer = setTimeout(() => {
      finish(
        fail(
          `no peer at ${formatEndpoint(target)} within ${deadlineMs} ms: ${attempts} attempts from ${formatEndpoint(local)}, errors seen: ${describeErrors(errors)}`,
          'EDEADLINE',
          attempts,
          { ...errors },
          elapsed(),
        ),
      );
    }, deadlineMs);

    const onAbort = () =>
      finish(
        fail(`dial aborted after ${attempts} attempts`, 'ABORT_ERR', attempts, { ...errors }, elapsed()),
      );
    signal?.addEventListener('abort', onAbort, { once: true });

    function finish(outcome: DialResult | DialError) {
      if (settled) return;
      settled = true;
      clearTimeout(deadlineTimer);
      cancelRetry?.();
      signal?.removeEventListener('abort', onAbort);
      if (outcome instanceof DialError) {
        socket?.destroy();
        reject(outcome);
      } else {
        resolve(outcome);
      }
    }

    function attempt() {
      if (settled) return;
      attempts += 1;
      const current = net.connect({
        host: target.host,
        port: target.port,
        localAddress: local.host,
        localPort: local.port,
        family: localFamily,
      });
      socket = current;
      current.once('connect', () => {
        current.removeAllListeners('error');
        if (current.localPort === current.remotePort && current.localAddress === current.remoteAddress) {
          finish(
            fail(
              `connected to itself at ${formatEndpoint(target)} (a self-connect, not a peer)`,
              'ESELFCONNECT',
              attempts,
              { ...errors },
              elapsed(),
            ),
          );
          return;
        }
        finish({ socket: current, attempts, elapsedMs: elapsed(), errors: { ...errors } });
      });
      current.once('error', (error: NodeJS.ErrnoException) => {
        current.destroy();
        if (settled) return;
        const code = error.code ?? 'UNKNOWN';
        errors[code] = (errors[code] ?? 0) + 1;
        // A connect right after the last attempt failed can find that attempt's 4-tuple not yet
        // released (EADDRNOTAVAIL): a few short waits let it go. One still taken after them is
        // another connection's (a TIME_WAIT) and ends the dial like bind() errors and anything
        // else retrying cannot fix.
        const tupleBusy = code === 'EADDRNOTAVAIL' && error.syscall !== 'bind';
        busyInARow = tupleBusy ? busyInARow + 1 : 0;
        if (tupleBusy && busyInARow <= BUSY_TUPLE_RETRIES) {
          const timer = setTimeout(attempt, Math.max(retryIntervalMs, BUSY_TUPLE_WAIT_MS));
          cancelRetry = () => clearTimeout(timer);
          return;
        }
        if (error.syscall === 'bind' || !RETRYABLE_CODES.has(code)) {
          const what =
            code === 'EADDRINUSE' && error.syscall === 'bind'
              ? `local port ${formatEndpoint(local)} is in use by a listener or an unshareable socket`
              : code === 'EADDRNOTAVAIL' && error.syscall === 'bind'
                ? `local address ${local.host} is not an address of this host`
                : code === 'EADDRNOTAVAIL'
                  ? `the connection ${formatEndpoint(local)} -> ${formatEndpoint(target)} is still in use (an earlier one lingering in TIME_WAIT?)`
                  : `${error.syscall ?? 'connect'} failed: ${error.message}`;
          finish(fail(`${what} (${code})`, code, attempts, { ...errors }, elapsed()));
          return;
        }
        if (retryIntervalMs > 0) {
          const timer = setTimeout(attempt, retryIntervalMs);
          cancelRetry = () => clearTimeout(timer);
        } else {
          const immediate = setImmediate(attempt);
          cancelRetry = () => clearImmediate(immediate);
        }
      });
    }

    attempt();
  });
}
