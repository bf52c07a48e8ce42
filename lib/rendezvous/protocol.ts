/**
 * The rendezvous wire protocol: one JSON object per line, every object carrying `v` (the version),
 * no line longer than MAX_LINE_BYTES. Pure: encode, decode and validate; no sockets here.
 *
 * Flow (client C, server S):
 *   C connects to the main port             S->C: hello {probePort (null: none), pairTimeoutMs}
 *   if probePort: C connects to that port on the server's host, from the same local port:
 *     C->S: probe                            S->C: observed {endpoint}, then S closes
 *   C->S on the main port:  register {session, auth, name, probed}
 *   S->C: registered {observed}; ping {id} (a few, for the RTT) answered by C with pong {id}
 *   when two peers with the same session AND auth are registered and measured:
 *   S->C: peer {self, peer, startInMs}       C dials the peer, then C->S: result {ok, ...}
 *   S->C: error {code, message}               then S closes that connection
 * `auth` is HMAC-SHA256(secret, session): the server pairs peers on (session, auth), so peers with
 * different secrets never meet nor block each other, and the server never sees the secret.
 */
import { createHmac } from 'node:crypto';
import { isIP } from 'node:net';
import { LineSplitter as CoreLineSplitter, LineTooLongError } from '../core/lineSplitter.ts';
import type { Endpoint } from '../core/types.ts';
import type {
  ClientMessage,
  Decoded,
  ErrorCode,
  ObservedMapping,
  PeerInfo,
  PortPrediction,
  ProtocolVersion,
  ServerMessage,
} from './types.ts';

export const PROTOCOL_VERSION: ProtocolVersion = 2;
export const MAX_LINE_BYTES = 4096;
/** A start delay covers half the slower round trip plus a margin: more than this is not a real one. */
export const MAX_START_DELAY_MS = 60_000;

const KNOWN_ERROR_CODES: Record<ErrorCode, true> = {
  'bad-version': true,
  malformed: true,
  'too-large': true,
  idle: true,
  unpaired: true,
  'session-full': true,
  'bad-state': true,
};

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
const AUTH_PATTERN = /^[0-9a-f]{64}$/;

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
    isIP(endpoint.host) !== 0 &&
    isPort(endpoint.port)
  );
}

function isPort(value: unknown): value is number {
  return Number.isInteger(value) && (value as number) >= 1 && (value as number) <= 65535;
}

function isFiniteNumber(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value);
}

/** `us`: who decodes, for the version message ("this server speaks v2"). */
function parseObject(line: string, us: 'server' | 'client'): Decoded<Shape> {
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
      error: `unsupported protocol version ${JSON.stringify(object.v)?.slice(0, 20)} (this ${us} speaks v${PROTOCOL_VERSION})`,
    };
  if (typeof object.type !== 'string') return { ok: false, code: 'malformed', error: 'missing "type"' };
  return { ok: true, message: object };
}

const malformed = (error: string): Decoded<never> => ({ ok: false, code: 'malformed', error });

/** Validates a line from a client. */
export function decodeClientMessage(line: string): Decoded<ClientMessage> {
  const parsed = parseObject(line, 'server');
  if (!parsed.ok) return parsed;
  const m = parsed.message;
  switch (m.type) {
    case 'probe':
      return { ok: true, message: { v: PROTOCOL_VERSION, type: 'probe' } };
    case 'register': {
      if (typeof m.session !== 'string' || !isValidSession(m.session))
        return malformed('register: "session" must be 1..64 of [A-Za-z0-9._-]');
      if (typeof m.auth !== 'string' || !AUTH_PATTERN.test(m.auth))
        return malformed('register: "auth" must be 64 hex digits');
      const name = m.name ?? '';
      if (typeof name !== 'string' || !NAME_PATTERN.test(name))
        return malformed('register: "name" must be 0..32 of [A-Za-z0-9._-]');
      const probed = m.probed ?? null;
      if (probed !== null && !isEndpoint(probed))
        return malformed('register: "probed" must be an endpoint or null');
      return {
        ok: true,
        message: { v: PROTOCOL_VERSION, type: 'register', session: m.session, auth: m.auth, name, probed },
      };
    }
    case 'pong':
      if (!Number.isInteger(m.id)) return malformed('pong: "id" must be an integer');
      return { ok: true, message: { v: PROTOCOL_VERSION, type: 'pong', id: m.id as number } };
    case 'result': {
      if (typeof m.ok !== 'boolean' || !isFiniteNumber(m.elapsedMs) || !Number.isInteger(m.attempts))
        return malformed('result: needs "ok" (boolean), "elapsedMs" (number), "attempts" (integer)');
      const error = typeof m.error === 'string' ? m.error.slice(0, 512) : undefined;
      return {
        ok: true,
        message: {
          v: PROTOCOL_VERSION,
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

function isPrediction(value: unknown): value is PortPrediction | undefined {
  if (value === undefined) return true;
  const prediction = value as Shape | null;
  return (
    typeof prediction === 'object' &&
    prediction !== null &&
    Number.isInteger(prediction.step) &&
    Array.isArray(prediction.ports) &&
    prediction.ports.length <= PREDICTED_PORTS &&
    prediction.ports.every(isPort)
  );
}

function isPeerInfo(value: unknown): value is PeerInfo {
  const info = value as Shape | null;
  return (
    isPrediction(info?.prediction) &&
    typeof info === 'object' &&
    info !== null &&
    typeof info.name === 'string' &&
    NAME_PATTERN.test(info.name) &&
    isEndpoint(info.endpoint) &&
    (info.mapping === 'endpoint-independent' ||
      info.mapping === 'endpoint-dependent' ||
      info.mapping === 'unknown') &&
    isFiniteNumber(info.rttMs)
  );
}

/** Validates a line from the server. */
export function decodeServerMessage(line: string): Decoded<ServerMessage> {
  const parsed = parseObject(line, 'client');
  if (!parsed.ok) return parsed;
  const m = parsed.message;
  switch (m.type) {
    case 'hello': {
      const probePort = m.probePort ?? null;
      if (probePort !== null && !isPort(probePort))
        return malformed('hello: "probePort" must be a port (1..65535) or null');
      if (!Number.isInteger(m.pairTimeoutMs) || (m.pairTimeoutMs as number) <= 0)
        return malformed('hello: "pairTimeoutMs" must be a positive integer');
      return {
        ok: true,
        message: { v: PROTOCOL_VERSION, type: 'hello', probePort, pairTimeoutMs: m.pairTimeoutMs as number },
      };
    }
    case 'observed':
      if (!isEndpoint(m.endpoint)) return malformed('observed: bad "endpoint"');
      return { ok: true, message: { v: PROTOCOL_VERSION, type: 'observed', endpoint: m.endpoint } };
    case 'registered':
      if (!isEndpoint(m.observed)) return malformed('registered: bad "observed"');
      return { ok: true, message: { v: PROTOCOL_VERSION, type: 'registered', observed: m.observed } };
    case 'ping':
      if (!Number.isInteger(m.id)) return malformed('ping: "id" must be an integer');
      return { ok: true, message: { v: PROTOCOL_VERSION, type: 'ping', id: m.id as number } };
    case 'peer':
      if (
        !isPeerInfo(m.self) ||
        !isPeerInfo(m.peer) ||
        !isFiniteNumber(m.startInMs) ||
        m.startInMs < 0 ||
        m.startInMs > MAX_START_DELAY_MS
      )
        return malformed('peer: bad "self", "peer" or "startInMs"');
      return {
        ok: true,
        message: { v: PROTOCOL_VERSION, type: 'peer', self: m.self, peer: m.peer, startInMs: m.startInMs },
      };
    case 'error':
      if (
        typeof m.code !== 'string' ||
        !Object.hasOwn(KNOWN_ERROR_CODES, m.code) ||
        typeof m.message !== 'string'
      )
        return malformed('error: bad "code" or "message"');
      return {
        ok: true,
        message: {
          v: PROTOCOL_VERSION,
          type: 'error',
          code: m.code as ErrorCode,
          message: m.message.slice(0, 512),
        },
      };
    default:
      return malformed(`unknown message type ${JSON.stringify(m.type).slice(0, 40)}`);
  }
}

/**
 * The protocol's lines from a byte stream: no line longer than `limit` bytes with its newline is
 * held or returned (ProtocolError 'too-large'); empty lines are skipped.
 */
export class LineSplitter {
  private readonly lines: CoreLineSplitter;
  constructor(private readonly limit = MAX_LINE_BYTES) {
    this.lines = new CoreLineSplitter(limit - 1);
  }

  push(chunk: Buffer | string): string[] {
    try {
      return this.lines.push(chunk).filter((line) => line.length > 0);
    } catch (error) {
      if (error instanceof LineTooLongError)
        throw new ProtocolError('too-large', `message exceeds ${this.limit} bytes`);
      throw error;
    }
  }
}

/** Is an endpoint seen on two server ports the same? That says whether the NAT mapping depends on the destination. */
export function classifyMapping(main: Endpoint, probed: Endpoint | null): ObservedMapping {
  if (!probed) return 'unknown';
  return main.host === probed.host && main.port === probed.port
    ? 'endpoint-independent'
    : 'endpoint-dependent';
}

/** A step larger than this between two mappings is not taken for sequential allocation. */
export const MAX_PREDICTION_STEP = 16;
/** How many predicted ports the server names (a client tries as many as it chooses). */
export const PREDICTED_PORTS = 8;

/**
 * The ports an endpoint-dependent mapping should take next, if the two mappings the server saw
 * (main connection first, then the probe, from one local port) differ by a small step: sequential
 * allocation. Undefined when the mapping is not endpoint-dependent or the step says nothing.
 */
export function predictPorts(main: Endpoint, probed: Endpoint | null): PortPrediction | undefined {
  if (!probed || probed.host !== main.host) return undefined;
  const step = probed.port - main.port;
  if (step === 0 || Math.abs(step) > MAX_PREDICTION_STEP) return undefined;
  const ports = Array.from({ length: PREDICTED_PORTS }, (_, i) => probed.port + step * (i + 1)).filter(
    (port) => port >= 1 && port <= 65535,
  );
  return ports.length ? { step, ports } : undefined;
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
