/** The vocabulary of the rendezvous protocol: its messages and what they carry. Leaf module: types only. */
import type { Endpoint } from '../core/types.ts';

/** How a peer's NAT mapped its local port, as seen by the server from two of its ports. */
export type ObservedMapping = 'endpoint-independent' | 'endpoint-dependent' | 'unknown';

export type ErrorCode =
  | 'bad-version'
  | 'malformed'
  | 'too-large'
  | 'unauthorized'
  | 'idle'
  | 'unpaired'
  | 'session-full'
  | 'bad-state';

export type ClientMessage =
  | { v: 1; type: 'probe' }
  | { v: 1; type: 'register'; session: string; auth: string; name: string; probed: Endpoint | null }
  | { v: 1; type: 'pong'; id: number }
  | {
      v: 1;
      type: 'result';
      ok: boolean;
      elapsedMs: number;
      attempts: number;
      error?: string;
    };

export interface PeerInfo {
  name: string;
  endpoint: Endpoint;
  mapping: ObservedMapping;
  rttMs: number;
}

export type ServerMessage =
  | { v: 1; type: 'observed'; endpoint: Endpoint }
  | { v: 1; type: 'registered'; observed: Endpoint }
  | { v: 1; type: 'ping'; id: number }
  | { v: 1; type: 'peer'; self: PeerInfo; peer: PeerInfo; startInMs: number }
  | { v: 1; type: 'error'; code: ErrorCode; message: string };

export type Decoded<T> = { ok: true; message: T } | { ok: false; code: ErrorCode; error: string };
