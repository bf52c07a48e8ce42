/**
 * STUN (RFC 8489) over TCP for the rendezvous server: a Binding Request is answered with a Binding
 * Success Response carrying XOR-MAPPED-ADDRESS (the endpoint the request came from), SOFTWARE and
 * FINGERPRINT. Over TCP STUN needs no framing of its own: the 20-byte header carries the length of
 * what follows. Pure: parse and encode; the server (server.ts) feeds it bytes.
 *
 * Why our own codec rather than an npm one: a Binding server needs a few attributes, strict checks
 * with the error RFC 8489 asks for (400, 420 with UNKNOWN-ATTRIBUTES) and framing on a byte
 * stream; the maintained codecs decode whole datagrams and throw on what they do not like. The
 * tests check our bytes against an independent codec (@msimerson/stun).
 */
import { isIPv4, isIPv6 } from 'node:net';
import { crc32 } from 'node:zlib';
import type { Endpoint } from '../core/types.ts';

export const STUN_MAGIC_COOKIE = 0x2112a442;
export const STUN_HEADER_BYTES = 20;
/** Longest message we read: a Binding Request is a few dozen bytes; anything near this is not one. */
export const STUN_MAX_MESSAGE_BYTES = 1024;
export const BINDING_METHOD = 0x001;

const ATTRIBUTE = {
  MAPPED_ADDRESS: 0x0001,
  USERNAME: 0x0006,
  MESSAGE_INTEGRITY: 0x0008,
  ERROR_CODE: 0x0009,
  UNKNOWN_ATTRIBUTES: 0x000a,
  REALM: 0x0014,
  NONCE: 0x0015,
  MESSAGE_INTEGRITY_SHA256: 0x001c,
  USERHASH: 0x001e,
  XOR_MAPPED_ADDRESS: 0x0020,
  PRIORITY: 0x0024,
  USE_CANDIDATE: 0x0025,
  SOFTWARE: 0x8022,
  FINGERPRINT: 0x8028,
} as const;

/** Comprehension-required attributes (below 0x8000) a Binding server may see and ignore (no credentials here; ICE's). */
const UNDERSTOOD = new Set<number>([
  ATTRIBUTE.USERNAME,
  ATTRIBUTE.MESSAGE_INTEGRITY,
  ATTRIBUTE.MESSAGE_INTEGRITY_SHA256,
  ATTRIBUTE.REALM,
  ATTRIBUTE.NONCE,
  ATTRIBUTE.USERHASH,
  ATTRIBUTE.PRIORITY,
  ATTRIBUTE.USE_CANDIDATE,
]);

const FINGERPRINT_XOR = 0x5354554e;

export type StunClass = 'request' | 'indication' | 'success' | 'error';

export interface StunMessage {
  method: number;
  class: StunClass;
  transactionId: Buffer;
  attributes: { type: number; value: Buffer }[];
}

/**
 * What the first bytes of a connection are: STUN (two zero bits, then at bytes 4..7 the magic
 * cookie), something else, or not known yet (fewer than 8 bytes that could still be STUN).
 */
export function classifyFirstBytes(bytes: Buffer): 'stun' | 'other' | 'undecided' {
  if (bytes.length === 0) return 'undecided';
  const first = bytes[0] as number;
  // '\n' opens a JSON client's connection (our clients send it first); '{' or any byte with one of
  // the two top bits set cannot start STUN.
  if ((first & 0xc0) !== 0 || first === 0x0a) return 'other';
  if (bytes.length < 8) return 'undecided';
  return bytes.readUInt32BE(4) === STUN_MAGIC_COOKIE ? 'stun' : 'other';
}

/** A message's whole length from its header (at least 20 bytes), or an error that ends the stream. */
export function stunMessageLength(header: Buffer): number | { error: string } {
  if (((header[0] as number) & 0xc0) !== 0) return { error: 'not STUN: the two top bits are not zero' };
  if (header.readUInt32BE(4) !== STUN_MAGIC_COOKIE) return { error: 'not STUN: no magic cookie' };
  const length = header.readUInt16BE(2);
  if (length % 4 !== 0) return { error: `message length ${length} is not a multiple of 4` };
  if (STUN_HEADER_BYTES + length > STUN_MAX_MESSAGE_BYTES)
    return { error: `message of ${STUN_HEADER_BYTES + length} bytes is over ${STUN_MAX_MESSAGE_BYTES}` };
  return STUN_HEADER_BYTES + length;
}

const CLASSES: StunClass[] = ['request', 'indication', 'success', 'error'];

function typeOf(method: number, stunClass: StunClass): number {
  const c = CLASSES.indexOf(stunClass);
  // The class bits sit at 0x0010 (C0) and 0x0100 (C1), between the method's bits.
  return (
    (method & 0x000f) | ((method & 0x0070) << 1) | ((method & 0x0f80) << 2) | ((c & 1) << 4) | ((c & 2) << 7)
  );
}

/**
 * One whole message (its length from stunMessageLength) to its parts, or why it is malformed. The
 * FINGERPRINT, if present, must be last and right.
 */
export function parseStunMessage(bytes: Buffer): StunMessage | { error: string } {
  const type = bytes.readUInt16BE(0);
  const method = (type & 0x000f) | ((type & 0x00e0) >> 1) | ((type & 0x3e00) >> 2);
  const stunClass = CLASSES[((type & 0x0010) >> 4) | ((type & 0x0100) >> 7)] as StunClass;
  const attributes: StunMessage['attributes'] = [];
  let offset = STUN_HEADER_BYTES;
  while (offset < bytes.length) {
    if (offset + 4 > bytes.length) return { error: 'truncated attribute header' };
    const attributeType = bytes.readUInt16BE(offset);
    const length = bytes.readUInt16BE(offset + 2);
    const end = offset + 4 + length;
    if (end > bytes.length)
      return { error: `attribute 0x${attributeType.toString(16)} runs past the message` };
    if (attributes.some((attribute) => attribute.type === ATTRIBUTE.FINGERPRINT))
      return { error: 'an attribute after FINGERPRINT' };
    if (attributeType === ATTRIBUTE.FINGERPRINT) {
      if (length !== 4) return { error: 'FINGERPRINT is not 4 bytes' };
      const expected = (crc32(bytes.subarray(0, offset)) ^ FINGERPRINT_XOR) >>> 0;
      if (bytes.readUInt32BE(offset + 4) !== expected) return { error: 'FINGERPRINT does not match' };
    }
    attributes.push({ type: attributeType, value: bytes.subarray(offset + 4, end) });
    offset = end + ((4 - (length % 4)) % 4);
  }
  if (offset !== bytes.length) return { error: 'attribute padding runs past the message' };
  return { method, class: stunClass, transactionId: Buffer.from(bytes.subarray(8, 20)), attributes };
}

/** Comprehension-required attributes of a request that a Binding server does not know (RFC 8489 section 6.3: 420). */
export function unknownRequiredAttributes(message: StunMessage): number[] {
  return [
    ...new Set(
      message.attributes
        .map((attribute) => attribute.type)
        .filter((type) => type < 0x8000 && !UNDERSTOOD.has(type)),
    ),
  ];
}

function attribute(type: number, value: Buffer): Buffer {
  const header = Buffer.alloc(4);
  header.writeUInt16BE(type, 0);
  header.writeUInt16BE(value.length, 2);
  return Buffer.concat([header, value, Buffer.alloc((4 - (value.length % 4)) % 4)]);
}

function message(type: number, transactionId: Buffer, attributes: Buffer[]): Buffer {
  const header = Buffer.alloc(STUN_HEADER_BYTES);
  header.writeUInt16BE(type, 0);
  header.writeUInt32BE(STUN_MAGIC_COOKIE, 4);
  transactionId.copy(header, 8);
  const body = Buffer.concat(attributes);
  // FINGERPRINT covers everything before it, with the length already counting it.
  header.writeUInt16BE(body.length + 8, 2);
  const fingerprint = Buffer.alloc(4);
  fingerprint.writeUInt32BE((crc32(Buffer.concat([header, body])) ^ FINGERPRINT_XOR) >>> 0);
  return Buffer.concat([header, body, attribute(ATTRIBUTE.FINGERPRINT, fingerprint)]);
}

/** XOR-MAPPED-ADDRESS (RFC 8489 section 14.2): the port XORed with the cookie's top half, the address with the cookie (and the transaction id for IPv6). */
function xorMappedAddress(endpoint: Endpoint, transactionId: Buffer): Buffer {
  const cookie = Buffer.alloc(4);
  cookie.writeUInt32BE(STUN_MAGIC_COOKIE);
  const v4 = isIPv4(endpoint.host);
  if (!v4 && !isIPv6(endpoint.host)) throw new Error(`not an IP address: ${endpoint.host}`);
  const address = v4 ? Buffer.from(endpoint.host.split('.').map(Number)) : ipv6Bytes(endpoint.host);
  const mask = v4 ? cookie : Buffer.concat([cookie, transactionId]);
  const value = Buffer.alloc(4 + address.length);
  value.writeUInt8(v4 ? 0x01 : 0x02, 1);
  value.writeUInt16BE(endpoint.port ^ (STUN_MAGIC_COOKIE >>> 16), 2);
  for (let i = 0; i < address.length; i++) value[4 + i] = (address[i] as number) ^ (mask[i] as number);
  return attribute(ATTRIBUTE.XOR_MAPPED_ADDRESS, value);
}

function ipv6Bytes(host: string): Buffer {
  const [head = '', tail = ''] = host.split('::');
  const groups = (text: string) => (text ? text.split(':') : []);
  const left = groups(head);
  const right = groups(tail);
  const all = host.includes('::')
    ? [...left, ...Array(8 - left.length - right.length).fill('0'), ...right]
    : left;
  const bytes = Buffer.alloc(16);
  for (const [i, group] of all.entries()) bytes.writeUInt16BE(Number.parseInt(group, 16), i * 2);
  return bytes;
}

/** Binding Success Response: where the request came from, who answered. */
export function bindingSuccess(transactionId: Buffer, from: Endpoint, software: string): Buffer {
  return message(typeOf(BINDING_METHOD, 'success'), transactionId, [
    xorMappedAddress(from, transactionId),
    attribute(ATTRIBUTE.SOFTWARE, Buffer.from(software, 'utf8')),
  ]);
}

/** An error response (ERROR-CODE, and UNKNOWN-ATTRIBUTES for a 420). */
export function errorResponse(
  method: number,
  transactionId: Buffer,
  code: number,
  reason: string,
  unknown: number[] = [],
): Buffer {
  const errorCode = Buffer.concat([
    Buffer.from([0, 0, Math.floor(code / 100), code % 100]),
    Buffer.from(reason, 'utf8'),
  ]);
  const list = Buffer.alloc(unknown.length * 2);
  for (const [i, type] of unknown.entries()) list.writeUInt16BE(type, i * 2);
  return message(typeOf(method, 'error'), transactionId, [
    attribute(ATTRIBUTE.ERROR_CODE, errorCode),
    ...(unknown.length ? [attribute(ATTRIBUTE.UNKNOWN_ATTRIBUTES, list)] : []),
  ]);
}

/**
 * The answer to one whole message from `from`: a response to send (the connection stays open), or
 * nothing for a message a server does not answer (an indication, a response), or a reason to close
 * (malformed: a 400 goes out first when the header allows one).
 */
export function answerStun(
  bytes: Buffer,
  from: Endpoint,
  software: string,
): { reply?: Buffer; close?: string; what: string } {
  const parsed = parseStunMessage(bytes);
  const transactionId = bytes.subarray(8, 20);
  const method = parsed && 'method' in parsed ? parsed.method : BINDING_METHOD;
  if ('error' in parsed)
    return {
      reply: errorResponse(method, Buffer.from(transactionId), 400, `Bad Request: ${parsed.error}`),
      close: parsed.error,
      what: 'malformed',
    };
  if (parsed.class !== 'request') return { what: `${parsed.class} ignored` };
  if (parsed.method !== BINDING_METHOD)
    return {
      reply: errorResponse(
        parsed.method,
        parsed.transactionId,
        400,
        'Bad Request: only Binding is served here',
      ),
      what: `method 0x${parsed.method.toString(16)} refused`,
    };
  const unknown = unknownRequiredAttributes(parsed);
  if (unknown.length)
    return {
      reply: errorResponse(parsed.method, parsed.transactionId, 420, 'Unknown Attribute', unknown),
      what: `unknown attributes ${unknown.map((type) => `0x${type.toString(16).padStart(4, '0')}`).join(',')}`,
    };
  return { reply: bindingSuccess(parsed.transactionId, from, software), what: 'binding' };
}
