/**
 * The control protocol's wire format: length-prefixed frames, each an 8-byte header (magic "SO",
 * version, reserved, body length big-endian) and a UTF-8 JSON body with a `type`. Decoding is strict:
 * a wrong magic, another version, a body over the limit, bad JSON or a message whose fields are not
 * what its type says are all a ControlProtocolError, after which the connection is dropped. Pure.
 */
import {
  type AgentMessage,
  CONTROL_ERRORS,
  CONTROL_VERSION,
  type ControlErrorCode,
  type CoordinatorMessage,
  FRAME_HEADER_BYTES,
  FRAME_MAGIC,
  MAX_FRAME_BYTES,
  RECORD_FIELDS,
} from './types.ts';

export class ControlProtocolError extends Error {
  override name = 'ControlProtocolError';
  constructor(
    message: string,
    readonly code: ControlErrorCode = CONTROL_ERRORS.protocol,
  ) {
    super(message);
  }
}

/** One frame holding `message`. Throws if the body would be over `limit` (a bug, not input). */
export function encodeFrame(message: object, limit = MAX_FRAME_BYTES): Buffer {
  const body = Buffer.from(JSON.stringify(message));
  if (body.length > limit) throw new RangeError(`control message of ${body.length} bytes is over ${limit}`);
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + body.length);
  frame.writeUInt16BE(FRAME_MAGIC, 0);
  frame.writeUInt8(CONTROL_VERSION, 2);
  frame.writeUInt8(0, 3);
  frame.writeUInt32BE(body.length, 4);
  body.copy(frame, FRAME_HEADER_BYTES);
  return frame;
}

/**
 * Splits a byte stream into frames and parses their bodies. Holds at most one frame's bytes; the
 * limit can be raised once the peer is authenticated. After an error it decodes nothing more.
 */
export class FrameDecoder {
  private buffered: Buffer[] = [];
  private bufferedBytes = 0;
  private failed = false;

  constructor(public limit: number) {}

  /** The messages completed by this chunk (objects with a string `type`, not yet validated). */
  push(chunk: Buffer): Record<string, unknown>[] {
    if (this.failed) return [];
    this.buffered.push(chunk);
    this.bufferedBytes += chunk.length;
    const messages: Record<string, unknown>[] = [];
    try {
      for (;;) {
        if (this.bufferedBytes < FRAME_HEADER_BYTES) break;
        const head = this.peek(FRAME_HEADER_BYTES);
        const magic = head.readUInt16BE(0);
        if (magic !== FRAME_MAGIC)
          throw new ControlProtocolError(
            `not a simopen control frame (first bytes ${head.subarray(0, 2).toString('hex')}, expected ${FRAME_MAGIC.toString(16)})`,
          );
        const version = head.readUInt8(2);
        if (version !== CONTROL_VERSION)
          throw new ControlProtocolError(
            `the peer speaks control protocol version ${version}; this end speaks ${CONTROL_VERSION}`,
            CONTROL_ERRORS.version,
          );
        const length = head.readUInt32BE(4);
        if (length > this.limit)
          throw new ControlProtocolError(
            `a control frame of ${length} bytes is over the limit of ${this.limit}`,
          );
        if (this.bufferedBytes < FRAME_HEADER_BYTES + length) break;
        const frame = this.take(FRAME_HEADER_BYTES + length);
        messages.push(parseBody(frame.subarray(FRAME_HEADER_BYTES)));
      }
    } catch (error) {
      this.failed = true;
      this.buffered = [];
      this.bufferedBytes = 0;
      throw error;
    }
    return messages;
  }

  private peek(bytes: number): Buffer {
    const first = this.buffered[0] as Buffer;
    if (first.length >= bytes) return first;
    this.buffered = [Buffer.concat(this.buffered)];
    return this.buffered[0] as Buffer;
  }

  private take(bytes: number): Buffer {
    const all = this.buffered.length === 1 ? (this.buffered[0] as Buffer) : Buffer.concat(this.buffered);
    const frame = all.subarray(0, bytes);
    const rest = all.subarray(bytes);
    this.buffered = rest.length ? [rest] : [];
    this.bufferedBytes = rest.length;
    return frame;
  }
}

function parseBody(body: Buffer): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch {
    throw new ControlProtocolError('a control frame whose body is not JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new ControlProtocolError('a control frame whose body is not a JSON object');
  const type = (value as { type?: unknown }).type;
  if (typeof type !== 'string') throw new ControlProtocolError('a control message without a type');
  return value as Record<string, unknown>;
}

// Field checks: each names the message and the field that is wrong.

type Check = (value: unknown) => boolean;
const isString: Check = (value) => typeof value === 'string';
const isShortString: Check = (value) => typeof value === 'string' && value.length <= 256;
const isCount: Check = (value) => Number.isSafeInteger(value) && (value as number) >= 0;
const isNumber: Check = (value) => typeof value === 'number' && Number.isFinite(value);
const isPositive: Check = (value) => isNumber(value) && (value as number) > 0;
const isPort: Check = (value) =>
  Number.isInteger(value) && (value as number) >= 1 && (value as number) <= 65535;
const isRole: Check = (value) => value === 'a' || value === 'b';
const isErrorCode: Check = (value) => (Object.values(CONTROL_ERRORS) as unknown[]).includes(value);

function requireFields(message: Record<string, unknown>, fields: Record<string, Check>): void {
  for (const [field, check] of Object.entries(fields))
    if (!check(message[field]))
      throw new ControlProtocolError(`${String(message.type)}: field "${field}" is missing or not valid`);
}

function requireObject(message: Record<string, unknown>, field: string): Record<string, unknown> {
  const value = message[field];
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new ControlProtocolError(`${String(message.type)}: field "${field}" is not an object`);
  return value as Record<string, unknown>;
}

function requireArray(message: Record<string, unknown>, field: string, check: Check, max: number): unknown[] {
  const value = message[field];
  if (!Array.isArray(value) || value.length > max || !value.every(check))
    throw new ControlProtocolError(
      `${String(message.type)}: field "${field}" is not a list of valid entries`,
    );
  return value;
}

/** A message the coordinator may send, checked field by field. */
export function asCoordinatorMessage(message: Record<string, unknown>): CoordinatorMessage {
  switch (message.type) {
    case 'auth':
      requireFields(message, { nonce: isShortString, proof: isShortString });
      break;
    case 'setup': {
      requireFields(message, { maxBatches: isPositive });
      if (message.workers !== undefined) requireFields(message, { workers: isPositive });
      const run = requireObject(message, 'run');
      const checked = { ...run, type: 'setup.run' };
      requireFields(checked, {
        payload: isCount,
        close: (value) => value === 'graceful' || value === 'reset' || value === 'simultaneous',
        sockets: (value) => value === 'handle' || value === 'net',
        timeoutMs: isPositive,
      });
      if (run.rate !== undefined && run.rate !== null) requireFields(checked, { rate: isPositive });
      if (run.holdMs !== undefined || run.keepaliveMs !== undefined)
        requireFields(checked, { holdMs: isPositive, keepaliveMs: isPositive });
      const ports: Record<string, unknown> = { ...requireObject(checked, 'ports'), type: 'setup.run.ports' };
      requireFields(ports, { first: isPort, last: isPort });
      if ((ports.first as number) > (ports.last as number))
        throw new ControlProtocolError('setup: the port range is empty');
      requireArray(
        message,
        'links',
        (link) => {
          if (typeof link !== 'object' || link === null) return false;
          const entry = link as Record<string, unknown>;
          return (
            isCount(entry.link) &&
            isRole(entry.role) &&
            isShortString(entry.local) &&
            isShortString(entry.peer) &&
            isShortString(entry.peerName) &&
            isCount(entry.portOffset)
          );
        },
        64,
      );
      break;
    }
    case 'start':
      requireFields(message, { t0: isNumber });
      break;
    case 'batch':
      requireFields(message, {
        batch: isCount,
        link: isCount,
        firstId: isCount,
        firstIndex: isCount,
        count: (value) => isPositive(value) && Number.isInteger(value) && (value as number) <= 65_536,
      });
      break;
    case 'abandon':
      requireArray(message, 'batches', isCount, 1_000_000);
      break;
    case 'stop':
    case 'finish':
      break;
    case 'ping':
      requireFields(message, { seq: isCount });
      break;
    case 'error':
      requireFields(message, { code: isErrorCode, message: isString });
      break;
    default:
      throw new ControlProtocolError(`unknown control message type "${String(message.type).slice(0, 40)}"`);
  }
  return message as unknown as CoordinatorMessage;
}

/** A message an agent may send, checked field by field. */
export function asAgentMessage(message: Record<string, unknown>): AgentMessage {
  switch (message.type) {
    case 'hello':
      requireFields(message, { name: isShortString, nonce: isShortString });
      break;
    case 'welcome':
      requireFields(message, { proof: isShortString });
      break;
    case 'ready': {
      const info = { ...requireObject(message, 'info'), type: 'ready.info' };
      requireFields(info, {
        name: isShortString,
        pid: isCount,
        workers: isPositive,
        sockets: (value) => value === 'handle' || value === 'net',
        node: isShortString,
        kernel: isShortString,
        hostname: isShortString,
      });
      break;
    }
    case 'result': {
      requireFields(message, { batch: isCount });
      const records = requireArray(message, 'records', isNumber, MAX_FRAME_BYTES);
      const errors = requireArray(message, 'errors', isShortString, 4096);
      if (records.length % RECORD_FIELDS !== 0)
        throw new ControlProtocolError(`result: ${records.length} numbers is not whole records`);
      for (let at = 1; at < records.length; at += RECORD_FIELDS) {
        const index = records[at] as number;
        if (!(Number.isInteger(index) && index >= -1 && index < errors.length))
          throw new ControlProtocolError('result: a record names an error that is not in the table');
      }
      break;
    }
    case 'stats': {
      requireFields(message, { peakRssBytes: isCount });
      if (message.keepalivesVerified !== undefined) requireFields(message, { keepalivesVerified: isCount });
      requireFields(
        { ...requireObject(message, 'cpu'), type: 'stats.cpu' },
        { userMs: isNumber, systemMs: isNumber },
      );
      const stats = { ...requireObject(message, 'stats'), type: 'stats.stats' };
      requireFields(stats, {
        established: isCount,
        failed: isCount,
        cancelled: isCount,
        notStarted: isCount,
        bytesVerified: isCount,
        establishUs: isString,
        pairUs: isString,
        // Side A's and side B's attempts, one encoded histogram each.
        attempts: (value: unknown) => Array.isArray(value) && value.length === 2 && value.every(isString),
      });
      for (const field of ['errors', 'retryErrors', 'closes']) {
        const counts = requireObject(stats, field);
        if (!Object.values(counts).every(isCount))
          throw new ControlProtocolError(`stats: field "${field}" holds a count that is not a count`);
      }
      break;
    }
    case 'pong':
      requireFields(message, { seq: isCount, time: isNumber });
      if (message.heldA !== undefined) requireFields(message, { heldA: isCount });
      if (message.rssBytes !== undefined) requireFields(message, { rssBytes: isCount });
      if (message.rssPeakBytes !== undefined) requireFields(message, { rssPeakBytes: isCount });
      break;
    case 'error':
      requireFields(message, { code: isErrorCode, message: isString });
      break;
    default:
      throw new ControlProtocolError(`unknown control message type "${String(message.type).slice(0, 40)}"`);
  }
  return message as unknown as AgentMessage;
}
