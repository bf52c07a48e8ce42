/**
 * Rendezvous protocol v2 (lib/rendezvous/protocol.ts): the server's hello names the probe port or
 * says there is none; versions, endpoints, names and error codes are validated on the way in.
 */
import { describe, expect, it } from 'vitest';
import {
  authToken,
  decodeClientMessage,
  decodeServerMessage,
  encodeMessage,
  LineSplitter,
  MAX_LINE_BYTES,
  PROTOCOL_VERSION,
} from '../../lib/rendezvous/protocol.ts';

const peerInfo = (name: string, host = '203.0.113.1') => ({
  name,
  endpoint: { host, port: 5000 },
  mapping: 'unknown',
  rttMs: 1,
});

describe('rendezvous protocol v2', () => {
  it('hello carries the probe port, or null for none, and the pair timeout', () => {
    expect(PROTOCOL_VERSION).toBe(2);
    for (const probePort of [3479, null]) {
      const line = encodeMessage({ v: PROTOCOL_VERSION, type: 'hello', probePort, pairTimeoutMs: 30_000 });
      expect(decodeServerMessage(line.trim())).toEqual({
        ok: true,
        message: { v: 2, type: 'hello', probePort, pairTimeoutMs: 30_000 },
      });
    }
    for (const bad of [
      { probePort: 0, pairTimeoutMs: 1 },
      { probePort: 70_000, pairTimeoutMs: 1 },
      { probePort: '3479', pairTimeoutMs: 1 },
      { probePort: null, pairTimeoutMs: 0 },
      { probePort: null },
    ])
      expect(decodeServerMessage(JSON.stringify({ v: 2, type: 'hello', ...bad }))).toMatchObject({
        ok: false,
        code: 'malformed',
      });
  });

  it('refuses other versions on both sides, saying which side speaks what', () => {
    expect(decodeClientMessage('{"v":1,"type":"probe"}')).toEqual({
      ok: false,
      code: 'bad-version',
      error: 'unsupported protocol version 1 (this server speaks v2)',
    });
    expect(decodeServerMessage('{"v":3,"type":"hello","probePort":null,"pairTimeoutMs":1}')).toEqual({
      ok: false,
      code: 'bad-version',
      error: 'unsupported protocol version 3 (this client speaks v2)',
    });
  });

  it('endpoints are IP literals; peer names, error codes and start delays are checked', () => {
    const register = (probed: unknown) =>
      decodeClientMessage(
        JSON.stringify({
          v: 2,
          type: 'register',
          session: 's',
          auth: authToken('x', 's'),
          name: 'a',
          probed,
        }),
      );
    expect(register({ host: '198.51.100.7', port: 9 })).toMatchObject({ ok: true });
    expect(register({ host: '2001:db8::1', port: 9 })).toMatchObject({ ok: true });
    expect(register({ host: 'example.com', port: 9 })).toMatchObject({ ok: false, code: 'malformed' });
    expect(register({ host: '\u001b[2J', port: 9 })).toMatchObject({ ok: false, code: 'malformed' });

    const peer = (self: object, startInMs = 10) =>
      decodeServerMessage(JSON.stringify({ v: 2, type: 'peer', self, peer: peerInfo('bob'), startInMs }));
    expect(peer(peerInfo('alice'))).toMatchObject({ ok: true });
    expect(peer(peerInfo('al\u001b[31mice'))).toMatchObject({ ok: false, code: 'malformed' });
    expect(peer(peerInfo('alice', 'not-an-ip'))).toMatchObject({ ok: false, code: 'malformed' });
    expect(peer(peerInfo('alice'), 3_600_000)).toMatchObject({ ok: false, code: 'malformed' });

    expect(decodeServerMessage('{"v":2,"type":"error","code":"unpaired","message":"m"}')).toMatchObject({
      ok: true,
    });
    // 'unauthorized' is gone: a wrong secret is not an error, just another pairing slot.
    for (const code of ['unauthorized', 'constructor', '__proto__'])
      expect(decodeServerMessage(JSON.stringify({ v: 2, type: 'error', code, message: 'm' }))).toMatchObject({
        ok: false,
        code: 'malformed',
      });
  });

  it('the protocol splitter skips empty lines and caps a line with its newline at MAX_LINE_BYTES', () => {
    const lines = new LineSplitter();
    expect(lines.push('\n\r\n{"a":1}\r\n')).toEqual(['{"a":1}']);
    expect(new LineSplitter().push(`${'x'.repeat(MAX_LINE_BYTES - 1)}\n`)).toHaveLength(1);
    expect(() => new LineSplitter().push(`${'x'.repeat(MAX_LINE_BYTES)}\n`)).toThrow(
      `message exceeds ${MAX_LINE_BYTES} bytes`,
    );
  });
});
