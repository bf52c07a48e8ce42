/**
 * simopen/peer: open a TCP connection by simultaneous open (both sides connect, nobody listens) and
 * chat over it. The public surface of lib/peer (docs/api.md).
 */

export { formatEndpoint } from '../core/endpoint.ts';
export type { Endpoint } from '../core/types.ts';
export { QUIT_COMMAND, runChat } from './chatSession.ts';
export { DialError, dialSimultaneous, prepareDial, RETRYABLE_CODES } from './dialSimultaneous.ts';
export type { ChatEnd, ChatOptions, DialOptions, DialResult, PreparedDial } from './types.ts';
