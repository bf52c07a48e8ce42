/**
 * The agents' control protocol: frames, limits, versions, message checks, and the token proofs.
 */
import { describe, expect, it } from 'vitest';
import {
  asAgentMessage,
  asCoordinatorMessage,
  ControlProtocolError,
  encodeFrame,
  FrameDecoder,
} from '../../lib/agent/controlCodec.ts';
import { agentProof, coordinatorProof, newNonce, proofsMatch } from '../../lib/agent/tokenProof.ts';
import {
  CONTROL_ERRORS,
  CONTROL_VERSION,
  FRAME_HEADER_BYTES,
  MAX_FRAME_BYTES,
  MAX_PREAUTH_FRAME_BYTES,
} from '../../lib/agent/types.ts';

function frame(body: string | Buffer, version = CONTROL_VERSION, magic = 0x534f): Buffer {
  const bytes = Buffer.isBuffer(body) ? body : Buffer.from(body);
  const head = Buffer.alloc(FRAME_HEADER_BYTES);
  head.writeUInt16BE(magic, 0);
  head.writeUInt8(version, 2);
  head.writeUInt32BE(bytes.length, 4);
  return Buffer.concat([head, bytes]);
}

function decodeError(decoder: FrameDecoder, bytes: Buffer): ControlProtocolError {
  try {
    decoder.push(bytes);
  } catch (error) {
    expect(error).toBeInstanceOf(ControlProtocolError);
    return error as ControlProtocolError;
  }
  throw new Error('decoded without an error');
}

describe('control frames', () => {
  it('round-trips messages split at any byte and several in one chunk', () => {
    const messages = [
      { type: 'ping', seq: 1 },
      { type: 'batch', batch: 7, link: 0, firstId: 100, firstIndex: 50, count: 32 },
      { type: 'stop' },
    ];
    const bytes = Buffer.concat(messages.map((message) => encodeFrame(message)));
    for (let split = 0; split <= bytes.length; split += 1) {
      const decoder = new FrameDecoder(MAX_FRAME_BYTES);
      const out = [...decoder.push(bytes.subarray(0, split)), ...decoder.push(bytes.subarray(split))];
      expect(out).toEqual(messages);
    }
    const decoder = new FrameDecoder(MAX_FRAME_BYTES);
    const out: unknown[] = [];
    for (const byte of bytes) out.push(...decoder.push(Buffer.from([byte])));
    expect(out).toEqual(messages);
  });

  it('refuses a frame over the limit from its header, before its body arrives', () => {
    const decoder = new FrameDecoder(MAX_PREAUTH_FRAME_BYTES);
    const head = frame(Buffer.alloc(0)).subarray(0, FRAME_HEADER_BYTES);
    head.writeUInt32BE(MAX_PREAUTH_FRAME_BYTES + 1, 4);
    const error = decodeError(decoder, head);
    expect(error.message).toMatch(/4097 bytes is over the limit of 4096/);
    expect(error.code).toBe(CONTROL_ERRORS.protocol);
    // Decodes nothing more after an error.
    expect(decoder.push(encodeFrame({ type: 'stop' }))).toEqual([]);
  });

  it('takes frames up to the limit: raising it (authenticated) lets a big one through', () => {
    const big = { type: 'result', batch: 1, records: new Array(4000).fill(0), errors: [] };
    const bytes = encodeFrame(big);
    expect(bytes.length).toBeGreaterThan(MAX_PREAUTH_FRAME_BYTES);
    expect(decodeError(new FrameDecoder(MAX_PREAUTH_FRAME_BYTES), bytes).message).toMatch(/over the limit/);
    const decoder = new FrameDecoder(MAX_PREAUTH_FRAME_BYTES);
    decoder.limit = MAX_FRAME_BYTES;
    expect(decoder.push(bytes)).toEqual([big]);
  });

  it('refuses another magic, another version (code EVERSION), bad JSON, a body without a type', () => {
    expect(decodeError(new FrameDecoder(4096), Buffer.from('GET / HTTP/1.1\r\n\r\n')).message).toMatch(
      /not a simopen control frame \(first bytes 4745/,
    );
    const other = decodeError(new FrameDecoder(4096), frame('{"type":"ping","seq":1}', CONTROL_VERSION + 1));
    expect(other.code).toBe(CONTROL_ERRORS.version);
    expect(other.message).toBe(
      `the peer speaks control protocol version ${CONTROL_VERSION + 1}; this end speaks ${CONTROL_VERSION}`,
    );
    expect(decodeError(new FrameDecoder(4096), frame('{"type":')).message).toMatch(/not JSON/);
    expect(decodeError(new FrameDecoder(4096), frame('[1,2]')).message).toMatch(/not a JSON object/);
    expect(decodeError(new FrameDecoder(4096), frame('{"seq":1}')).message).toMatch(/without a type/);
  });

  it('an encoder never writes a frame over the limit', () => {
    expect(() => encodeFrame({ type: 'x', pad: 'y'.repeat(100) }, 50)).toThrow(RangeError);
  });
});

describe('control messages', () => {
  const setup = {
    type: 'setup',
    maxBatches: 8,
    run: {
      payload: 64,
      close: 'graceful',
      sockets: 'handle',
      timeoutMs: 10_000,
      ports: { first: 1024, last: 65_535 },
    },
    links: [{ link: 0, role: 'a', local: '10.0.1.2', peer: '203.0.113.2', peerName: 'bob', portOffset: 0 }],
  };

  it('accepts each direction its own messages, field by field', () => {
    expect(asCoordinatorMessage(setup)).toBe(setup);
    expect(asCoordinatorMessage({ type: 'abandon', batches: [1, 2] }).type).toBe('abandon');
    expect(asAgentMessage({ type: 'hello', name: 'alice', nonce: newNonce() }).type).toBe('hello');
    const result = {
      type: 'result',
      batch: 3,
      records: [0, -1, 1, 900, 10, 2000, 128, 1, 1, 0, 1, -1, 5, -1, 0, 0],
      errors: ['EPAIRTIMEOUT'],
    };
    expect(asAgentMessage(result)).toBe(result);
    const pong = { type: 'pong', seq: 4, time: 1, heldA: 10, rssBytes: 2048, rssPeakBytes: 4096 };
    expect(asAgentMessage(pong)).toBe(pong);
  });

  it('refuses unknown types, messages of the other direction, missing and bad fields, naming them', () => {
    expect(() => asCoordinatorMessage({ type: 'shutdown' })).toThrow(
      /unknown control message type "shutdown"/,
    );
    expect(() => asCoordinatorMessage({ type: 'hello', name: 'x', nonce: 'y' })).toThrow(/unknown/);
    expect(() => asAgentMessage({ type: 'batch', batch: 1 })).toThrow(/unknown/);
    expect(() =>
      asCoordinatorMessage({ type: 'batch', batch: 1, link: 0, firstId: -1, firstIndex: 0, count: 1 }),
    ).toThrow(/batch: field "firstId"/);
    expect(() => asCoordinatorMessage({ ...setup, run: { ...setup.run, close: 'abrupt' } })).toThrow(
      /setup.run: field "close"/,
    );
    expect(() =>
      asCoordinatorMessage({ ...setup, run: { ...setup.run, ports: { first: 2000, last: 1000 } } }),
    ).toThrow(/port range is empty/);
    expect(() => asCoordinatorMessage({ ...setup, links: [{ link: 0, role: 'c' }] })).toThrow(
      /field "links"/,
    );
    expect(() => asAgentMessage({ type: 'pong', seq: 1, time: 1, rssPeakBytes: -1 })).toThrow(/rssPeakBytes/);
    expect(() => asAgentMessage({ type: 'result', batch: 1, records: [0, 0, 1], errors: [] })).toThrow(
      /not whole records/,
    );
    expect(() =>
      asAgentMessage({ type: 'result', batch: 1, records: [1, 3, 1, -1, 0, 0, 0, 0], errors: ['E'] }),
    ).toThrow(/names an error that is not in the table/);
    expect(() => asAgentMessage({ type: 'hello', name: 'x'.repeat(300), nonce: 'n' })).toThrow(
      /field "name"/,
    );
  });
});

describe('token proofs', () => {
  it('match only with the same token and nonces, and never stand in for each other', () => {
    const [agentNonce, coordinatorNonce] = [newNonce(), newNonce()];
    const coordinator = coordinatorProof('secret', agentNonce, coordinatorNonce, 'alice');
    expect(proofsMatch(coordinatorProof('secret', agentNonce, coordinatorNonce, 'alice'), coordinator)).toBe(
      true,
    );
    expect(proofsMatch(coordinatorProof('wrong', agentNonce, coordinatorNonce, 'alice'), coordinator)).toBe(
      false,
    );
    expect(proofsMatch(coordinatorProof('secret', newNonce(), coordinatorNonce, 'alice'), coordinator)).toBe(
      false,
    );
    expect(proofsMatch(coordinatorProof('secret', agentNonce, coordinatorNonce, 'bob'), coordinator)).toBe(
      false,
    );
    // An agent cannot answer by echoing the coordinator's proof.
    expect(proofsMatch(agentProof('secret', agentNonce, coordinatorNonce, 'alice'), coordinator)).toBe(false);
    expect(proofsMatch(coordinator, coordinator.slice(1))).toBe(false);
    expect(coordinator).not.toContain('secret');
  });
});
