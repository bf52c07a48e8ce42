import { describe, expect, it } from 'vitest';
import {
  authToken,
  classifyMapping,
  decodeClientMessage,
  decodeServerMessage,
  encodeMessage,
  LineSplitter,
  MAX_LINE_BYTES,
  startDelays,
} from '../../lib/rendezvous/protocol.ts';

describe('rendezvous protocol', () => {
  it('round-trips a register message and rejects what is not the protocol', () => {
    const auth = authToken('s3cret', 'demo');
    const line = encodeMessage({
      v: 2,
      type: 'register',
      session: 'demo',
      auth,
      name: 'alice',
      probed: null,
    });
    expect(line.endsWith('\n')).toBe(true);
    expect(decodeClientMessage(line.trim())).toEqual({
      ok: true,
      message: { v: 2, type: 'register', session: 'demo', auth, name: 'alice', probed: null },
    });
    expect(decodeClientMessage('hello')).toMatchObject({ ok: false, code: 'malformed' });
    expect(decodeClientMessage('[1]')).toMatchObject({ ok: false, code: 'malformed' });
    expect(decodeClientMessage('{"v":1,"type":"probe"}')).toMatchObject({ ok: false, code: 'bad-version' });
    expect(decodeClientMessage('{"v":2,"type":"register","session":"a b","auth":"x"}')).toMatchObject({
      ok: false,
      code: 'malformed',
    });
    expect(decodeClientMessage(`{"v":2,"type":"probe","pad":"${'x'.repeat(MAX_LINE_BYTES)}"}`)).toMatchObject(
      {
        ok: false,
        code: 'too-large',
      },
    );
    expect(decodeServerMessage('{"v":2,"type":"peer","self":{},"peer":{},"startInMs":1}')).toMatchObject({
      ok: false,
      code: 'malformed',
    });
  });

  it('the auth token depends on both secret and session, and does not contain the secret', () => {
    const token = authToken('s3cret', 'demo');
    expect(token).toMatch(/^[0-9a-f]{64}$/);
    expect(token).not.toContain('s3cret');
    expect(authToken('other', 'demo')).not.toBe(token);
    expect(authToken('s3cret', 'demo2')).not.toBe(token);
  });

  it('splits lines and refuses a line over the limit, with or without its newline', () => {
    const splitter = new LineSplitter(64);
    expect(splitter.push('{"a":1}\n{"b"')).toEqual(['{"a":1}']);
    expect(splitter.push(':2}\r\n')).toEqual(['{"b":2}']);
    expect(() => new LineSplitter(64).push('x'.repeat(64))).toThrow(/exceeds 64 bytes/);
    expect(() => new LineSplitter(64).push(`${'x'.repeat(70)}\n`)).toThrow(/exceeds 64 bytes/);
  });

  it('start delays make both SYNs leave together; mappings are classified from two observations', () => {
    // Peer 0 is 40 ms away (20 one way), peer 1 is 2 ms away: the near one waits longer.
    const [near, far] = startDelays([2, 40], 50);
    expect(1 + near).toBe(20 + far);
    expect(classifyMapping({ host: '203.0.113.1', port: 5000 }, { host: '203.0.113.1', port: 5000 })).toBe(
      'endpoint-independent',
    );
    expect(classifyMapping({ host: '203.0.113.1', port: 5000 }, { host: '203.0.113.1', port: 6123 })).toBe(
      'endpoint-dependent',
    );
    expect(classifyMapping({ host: '203.0.113.1', port: 5000 }, null)).toBe('unknown');
  });
});
