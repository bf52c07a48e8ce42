/**
 * STUN on the rendezvous server's own port (RFC 8489 over TCP): requests from a client we did not
 * write (@msimerson/stun), answered with the endpoint they came from; malformed ones refused; the
 * rendezvous protocol on the same port unchanged. Real sockets on the host loopback, ports this run
 * owns.
 */
import net from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { decodeServerMessage } from '../../lib/rendezvous/protocol.ts';
import { type RendezvousServer, startRendezvousServer } from '../../lib/rendezvous/server.ts';
import { freePort, freePorts } from '../helpers/freePorts.ts';
import { bindingRequest, exchange, stun } from '../helpers/independentStun.ts';

describe('STUN on the rendezvous server', () => {
  let port = 0;
  let server: RendezvousServer;
  let log: string[];

  beforeEach(async () => {
    log = [];
    [port] = (await freePorts(2)) as [number, number];
    server = await startRendezvousServer({
      host: '127.0.0.1',
      port,
      probePort: port + 1,
      idleTimeoutMs: 2000,
      log: (line) => log.push(line),
    });
  });
  afterEach(() => server.close());

  it('answers a Binding Request with XOR-MAPPED-ADDRESS (the endpoint it came from), SOFTWARE and a valid FINGERPRINT', async () => {
    const localPort = await freePort();
    const request = bindingRequest();
    const { responses, raw } = await exchange('127.0.0.1', port, [request.bytes], { localPort });
    const [response] = responses;
    expect(response?.type).toBe(stun.constants.STUN_BINDING_RESPONSE);
    expect(response?.transactionId.equals(request.transactionId)).toBe(true);
    expect(response?.getXorAddress()).toMatchObject({ address: '127.0.0.1', port: localPort });
    expect(response?.getSoftware()).toMatch(/^simopen rendezvous/);
    expect(response && stun.validateFingerprint(response)).toBe(true);
    // The header: two zero bits, the magic cookie, a length that counts every attribute.
    expect(raw[0]?.readUInt32BE(4)).toBe(0x2112a442);
    expect(raw[0]?.readUInt16BE(2)).toBe((raw[0]?.length ?? 0) - 20);
    expect(log.some((line) => / stun from=127\.0\.0\.1:\d+ request=binding/.test(line))).toBe(true);
  });

  it('serves several requests on one connection, also when a request arrives in pieces', async () => {
    const first = bindingRequest();
    const second = bindingRequest();
    const pieces = [
      first.bytes.subarray(0, 3),
      first.bytes.subarray(3, 11),
      first.bytes.subarray(11),
      second.bytes,
    ];
    const { responses } = await exchange('127.0.0.1', port, pieces, { responses: 2 });
    expect(responses.map((response) => response.transactionId.toString('hex'))).toEqual([
      first.transactionId.toString('hex'),
      second.transactionId.toString('hex'),
    ]);
  });

  it('answers an unknown comprehension-required attribute with 420 and UNKNOWN-ATTRIBUTES', async () => {
    const request = stun.createMessage(stun.constants.STUN_BINDING_REQUEST as number);
    // CHANGE-REQUEST (RFC 5780): comprehension-required, and not something this server does.
    request.addAttribute(stun.constants.STUN_ATTR_CHANGE_REQUEST as number, 6);
    const { responses } = await exchange('127.0.0.1', port, [stun.encode(request)]);
    const [response] = responses;
    expect(response?.type).toBe(stun.constants.STUN_BINDING_ERROR_RESPONSE);
    expect(response?.getError()?.code).toBe(420);
    expect(response?.getUnknownAttributes()).toEqual([0x0003]);
  });

  it('refuses a request of another method with 400, and ignores an indication', async () => {
    const allocate = stun.createMessage(stun.constants.STUN_ALLOCATE_REQUEST as number);
    const indication = stun.createMessage(stun.constants.STUN_BINDING_INDICATION as number);
    const binding = bindingRequest();
    const { responses } = await exchange(
      '127.0.0.1',
      port,
      [stun.encode(indication), stun.encode(allocate), binding.bytes],
      { responses: 2 },
    );
    expect(responses.map((response) => response.getError()?.code ?? 'ok')).toEqual([400, 'ok']);
    expect(responses[1]?.transactionId.equals(binding.transactionId)).toBe(true);
  });

  it('answers a request whose attribute runs past the message with 400 and closes; a broken length only closes', async () => {
    const overrun = Buffer.from(bindingRequest().bytes.subarray(0, 20));
    overrun.writeUInt16BE(8, 2);
    const body = Buffer.from([0x80, 0x22, 0x00, 0x40, 0x61, 0x62, 0x63, 0x64]);
    const bad = await exchange('127.0.0.1', port, [Buffer.concat([overrun, body])], { responses: 2 });
    expect(bad.responses[0]?.getError()?.code).toBe(400);
    expect(bad.closed).toBe(true);
    const unaligned = Buffer.from(bindingRequest().bytes.subarray(0, 20));
    unaligned.writeUInt16BE(7, 2);
    const broken = await exchange('127.0.0.1', port, [unaligned, Buffer.alloc(7)]);
    expect(broken.responses).toEqual([]);
    expect(broken.closed).toBe(true);
    expect(log.some((line) => /closed="message length 7 is not a multiple of 4"/.test(line))).toBe(true);
  });

  it('still speaks the rendezvous protocol on the same port: hello at once after a newline, after a short wait otherwise', async () => {
    for (const opener of ['\n', '']) {
      const socket = net.connect({ host: '127.0.0.1', port });
      const line = await new Promise<string>((resolve, reject) => {
        let text = '';
        socket.on('connect', () => opener && socket.write(opener));
        socket.on('data', (chunk) => {
          text += chunk;
          if (text.includes('\n')) resolve(text.slice(0, text.indexOf('\n')));
        });
        socket.on('error', reject);
      });
      socket.destroy();
      const decoded = decodeServerMessage(line);
      expect(decoded.ok && decoded.message.type).toBe('hello');
    }
  });
});
