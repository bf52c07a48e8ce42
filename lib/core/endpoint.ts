/** Endpoints for people and for checks: "host:port" text, and whether an address is this host's. */
import { isIP } from 'node:net';
import os from 'node:os';
import type { Endpoint } from './types.ts';

/** "host:port" with brackets for IPv6, for messages. */
export function formatEndpoint(endpoint: Endpoint): string {
  return isIP(endpoint.host) === 6
    ? `[${endpoint.host}]:${endpoint.port}`
    : `${endpoint.host}:${endpoint.port}`;
}

/** Is this address one of this host's own (or a loopback one, which all are)? */
export function isLocalAddress(address: string): boolean {
  if (address.startsWith('127.') || address === '::1' || address.startsWith('::ffff:127.')) return true;
  return Object.values(os.networkInterfaces()).some((list) =>
    list?.some((entry) => entry.address === address),
  );
}
