/**
 * The bare TCP handles' self-test (lib/core/rawTcpSelfTest.ts) in this process: one real connection
 * on the host loopback (ephemeral ports), passing here, and failing when the test hook corrupts a byte.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { RAW_TCP_CORRUPT_ENV, selfTestRawTcp } from '../../lib/core/rawTcpSelfTest.ts';

describe('selfTestRawTcp', () => {
  afterEach(() => {
    delete process.env[RAW_TCP_CORRUPT_ENV];
  });

  it('passes on this machine: bind, connect, write, read, half-close and close behave as net.Socket', async () => {
    expect(await selfTestRawTcp()).toBeUndefined();
  });

  it('passes twice in one process (the shared read buffer and the bindings are reusable)', async () => {
    expect(await selfTestRawTcp()).toBeUndefined();
    expect(await selfTestRawTcp()).toBeUndefined();
  });

  it(`fails, saying why, when ${RAW_TCP_CORRUPT_ENV} makes the bare socket write a wrong byte`, async () => {
    process.env[RAW_TCP_CORRUPT_ENV] = '1';
    expect(await selfTestRawTcp()).toBe(
      'bare TCP handles failed their self-test: the other end received other bytes than the bare socket wrote',
    );
  });

  it('fails with the error when the address cannot be bound', async () => {
    // 192.0.2.1 (TEST-NET-1) is no address of this host: listen fails before the bare socket is made.
    expect(await selfTestRawTcp({ host: '192.0.2.1' })).toMatch(
      /^bare TCP handles failed their self-test: listen on 192\.0\.2\.1: EADDRNOTAVAIL$/,
    );
  });
});
