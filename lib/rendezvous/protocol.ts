/**
 * The rendezvous wire protocol: one JSON object per line, every object carrying `v` (the version),
 * no line longer than MAX_LINE_BYTES. Pure: encode, decode and validate; no sockets here.
 *
 * Flow (client C, server S):
 *   C->S on the probe port: probe             S->C: observed {endpoint}, then S closes
 *   C->S on the main port:  register {session, auth, name, probed}
 *   S->C: registered {observed}; ping {id} (a few, for the RTT) answered by C with pong {id}
 *   when both peers of a session are registered and measured:
 *   S->C: peer {self, peer, startInMs}       C dials the peer, then C->S: result {ok, ...}
 *   S->C: error {code, message}               then S closes that connection
 * `auth` is HMAC-SHA256(secret, session): the server pairs equal tokens and never sees the secret.
 */
import { createHmac } from 'node:crypto';
import type { Endpoint } from '../core/types.ts';
import type { ClientMessage, Decoded, ErrorCode, ObservedMapping, PeerInfo, ServerMessage } from './types.ts';

export const PROTOCOL_VERSION = 1;
export const MAX_LINE_BYTES = 4096;

export class ProtocolError extends Error {
  override name = 'ProtocolError';
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** One message as a line; refuses to produce a line the other side would reject. */
export function encodeMessage(message: ClientMessage | ServerMessage): string {
  const line = `${JSON.stringify(message)}\n`;
  if (Buffer.byteLength(line) > MAX_LINE_BYTES)
    throw new ProtocolError(
      'too-large',
      `message of ${Buffer.byteLength(line)} bytes exceeds ${MAX_LINE_BYTES}`,
    );
  return line;
}

export function authToken(secret: string, session: string): string {
  return createHmac('sha256', secret)
    .update(`simopen-rendezvous-v${PROTOCOL_VERSION}:${session}`)
    .digest('hex');
}

const SESSION_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;
const NAME_PATTERN = /^[A-Za-z0-9._-]{0,32}$/;

export function isValidSession(session: string): boolean {
  return SESSION_PATTERN.test(session);
}

type Shape = Record<string, unknown>;

function isEndpoint(value: unknown): value is Endpoint {
  const endpoint = value as Shape | null;
  return (
    typeof endpoint === 'object' &&
    endpoint !== null &&
    typeof endpoint.host === 'string' &&
    endpoint.host.length > 0 &&
    endpoint.host.length <= 64 &&
    Number.isInteger(endpoint.port) &&
    (endpoint.port as number) >= 1 &&
    (endpoint.port as number) <= 65535
  );
}

function isFiniteNumber(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value);
}

function parseObject(line: string): Decoded<Shape> {
  if (Buffer.byteLength(line) > MAX_LINE_BYTES)
    return { ok: false, code: 'too-large', error: `line exceeds ${MAX_LINE_BYTES} bytes` };
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return { ok: false, code: 'malformed', error: 'not JSON' };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    return { ok: false, code: 'malformed', error: 'not a JSON object' };
  const object = value as Shape;
  if (object.v !== PROTOCOL_VERSION)
    return {
      ok: false,
      code: 'bad-version',
      error: `unsupported protocol version ${JSON.stringify(object.v)} (this server speaks v${PROTOCOL_VERSION})`,
    };
  if (typeof object.type !== 'string') return { ok: false, code: 'malformed', error: 'missing "type"' };
  return { ok: true, message: object };
}

const malformed = (error: string): Decoded<never> => ({ ok: false, code: 'malformed', error });

/** Validates a line from a client. */
export function decodeClientMessage(line: string): Decoded<ClientMessage> {
  const parsed = parseObject(line);
  if (!parsed.ok) return parsed;
  const m = parsed.message;
  switch (m.type) {
    case 'probe':
      return { ok: true, message: { v: 1, type: 'probe' } };
    case 'register': {
      if (typeof m.session !== 'string' || !isValidSession(m.session))
        return malformed('register: "session" must be 1..64 of [A-Za-z0-9._-]');
      if (typeof m.auth !== 'string' || !/^[0-9a-f]{64}$/.test(m.auth))
        return malformed('register: "auth" must be 64 hex digits');
      const name = m.name ?? '';
      if (typeof name !== 'string' || !NAME_PATTERN.test(name))
        return malformed('register: "name" must be 0..32 of [A-Za-z0-9._-]');
      const probed = m.probed ?? null;
      if (probed !== null && !isEndpoint(probed))
        return malformed('register: "probed" must be an endpoint or null');
      return {
        ok: true,
        message: { v: 1, type: 'register', session: m.session, auth: m.auth, name, probed },
      };
    }
    case 'pong':
      if (!Number.isInteger(m.id)) return malformed('pong: "id" must be an integer');
      return { ok: true, message: { v: 1, type: 'pong', id: m.id as number } };
    case 'result': {
      if (typeof m.ok !== 'boolean' || !isFiniteNumber(m.elapsedMs) || !Number.isInteger(m.attempts))
        return malformed('result: needs "ok" (boolean), "elapsedMs" (number), "attempts" (integer)');
      const error = typeof m.error === 'string' ? m.error.slice(0, 512) : undefined;
      return {
        ok: true,
        message: {
          v: 1,
          type: 'result',
          ok: m.ok,
          elapsedMs: m.elapsedMs,
          attempts: m.attempts as number,
          ...(error ? { error } : {}),
        },
      };
    }
    default:
      return malformed(`unknown message type ${JSON.stringify(m.type).slice(0, 40)}`);
  }
}

function isPeerInfo(value: unknown): value is PeerInfo {
  const info = value as Shape | null;
  return (
    typeof info === 'object' &&
    info !== null &&
    typeof info.name === 'string' &&
    isEndpoint(info.endpoint) &&
    (info.mapping === 'endpoint-independent' ||
      info.mapping === 'endpoint-dependent' ||
      info.mapping === 'unknown') &&
    isFiniteNumber(info.rttMs)
  );
}

/** Validates a line from the server. */
export function decodeServerMessage(line: string): Decoded<ServerMessage> {
  const parsed = parseObject(line);
  if (!parsed.ok) return parsed;
  const m = parsed.message;
  switch (m.type) {
    case 'observed':
      if (!isEndpoint(m.endpoint)) return malformed('observed: bad "endpoint"');
      return { ok: true, message: { v: 1, type: 'observed', endpoint: m.endpoint } };
    case 'registered':
      if (!isEndpoint(m.observed)) return malformed('registered: bad "observed"');
      return { ok: true, message: { v: 1, type: 'registered', observed: m.observed } };
    case 'ping':
      if (!Number.isInteger(m.id)) return malformed('ping: "id" must be an integer');
      return { ok: true, message: { v: 1, type: 'ping', id: m.id as number } };
    case 'peer':
      if (!isPeerInfo(m.self) || !isPeerInfo(m.peer) || !isFiniteNumber(m.startInMs) || m.startInMs < 0)
        return malformed('peer: bad "self", "peer" or "startInMs"');
      return {
        ok: true,
        message: { v: 1, type: 'peer', self: m.self, peer: m.peer, startInMs: m.startInMs },
      };
    case 'error':
      if (typeof m.code !== 'string' || typeof m.message !== 'string') return malformed('error: bad fields');
      return { ok: true, message: { v: 1, type: 'error', code: m.code as ErrorCode, message: m.message } };
    default:
      return malformed(`unknown message type ${JSON.stringify(m.type).slice(0, 40)}`);
  }
}

/**
 * Splits a byte stream into lines, refusing to buffer more than MAX_LINE_BYTES without a newline
 * (so a peer cannot make us hold an unbounded line). `push` returns complete lines.
 */
export class LineSplitter {
  private pending = '';
  constructor(private readonly limit = MAX_LINE_BYTES) {}

  push(chunk: string): string[] {
    this.pending += chunk;
    const lines = this.pending.split('\n');
    this.pending = lines.pop() ?? '';
    for (const line of lines)
      if (Buffer.byteLength(line) + 1 > this.limit)
        throw new ProtocolError('too-large', `message exceeds ${this.limit} bytes`);
    if (Buffer.byteLength(this.pending) >= this.limit)
      throw new ProtocolError('too-large', `message exceeds ${this.limit} bytes without a newline`);
    return lines.map((line) => line.replace(/\r$/, '')).filter((line) => line.length > 0);
  }
}

/** Is an endpoint seen on two server ports the same? That says whether the NAT mapping depends on the destination. */
export function classifyMapping(main: Endpoint, probed: Endpoint | null): ObservedMapping {
  if (!probed) return 'unknown';
  return main.host === probed.host && main.port === probed.port
    ? 'endpoint-independent'
    : 'endpoint-dependent';
}

/**
 * When each peer should dial, so both SYNs leave at the same moment (as libp2p DCUtR does): the
 * server sends both messages now; peer i starts after (D - rtt_i / 2) where D covers the slower peer
 * plus a margin for event-loop jitter.
 */
export function startDelays(rttMs: [number, number], marginMs = 50): [number, number] {
  const oneWay = rttMs.map((rtt) => rtt / 2) as [number, number];
  const total = Math.max(...oneWay) + marginMs;
  return [Math.round(total - oneWay[0]), Math.round(total - oneWay[1])];
}
