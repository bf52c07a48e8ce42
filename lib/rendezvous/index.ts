/**
 * simopen/rendezvous: TCP hole punching through a rendezvous server. The server pairs two peers of a
 * session and tells each the other's public endpoint and when to start; the client then opens the
 * direct connection by simultaneous open from the port its NAT mapped. The public surface of
 * lib/rendezvous (docs/api.md).
 */
export type { Endpoint } from '../core/types.ts';
export {
  PunchError,
  type PunchErrorCode,
  type PunchOptions,
  type PunchResult,
  punchThroughRendezvous,
} from './client.ts';
export { type RendezvousServer, type RendezvousServerOptions, startRendezvousServer } from './server.ts';
export type { ObservedMapping, PeerInfo } from './types.ts';
