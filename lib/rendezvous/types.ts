/** The vocabulary of the rendezvous protocol: its messages and what they carry. Leaf module: types only. */
import type { Endpoint } from '../core/types.ts';

/** The protocol version every message carries (`v`); protocol.ts holds the value. */
export type ProtocolVersion = 2;

/** How a peer's NAT mapped its local port, as seen by the server from two of its ports. */
export type ObservedMapping = 'endpoint-independent' | 'endpoint-dependent' | 'unknown';

export type ErrorCode =
  | 'bad-version'
  | 'malformed'
  | 'too-large'
  | 'idle'
  | 'unpaired'
  | 'session-full'
  | 'bad-state';

export type ClientMessage =
  | { v: ProtocolVersion; type: 'probe' }
  | {
      v: ProtocolVersion;
      type: 'register';
      session: string;
      auth: string;
      name: string;
      probed: Endpoint | null;
    }
  | { v: ProtocolVersion; type: 'pong'; id: number }
  | {
      v: ProtocolVersion;
      type: 'result';
      ok: boolean;
      elapsedMs: number;
      attempts: number;
      error?: string;
    };

/**
 * Port prediction for an endpoint-dependent mapping whose ports go up (or down) by a fixed step: the
 * server saw the main connection's port, then the probe's, and expects the next mapping at the
 * probe's port plus the step, then plus twice the step, ...
 */
export interface PortPrediction {
  step: number;
  /** The ports the peer's next mappings should get, most likely first. */
  ports: number[];
}

export interface PeerInfo {
  name: string;
  endpoint: Endpoint;
  mapping: ObservedMapping;
  rttMs: number;
  /** Present when the mapping is endpoint-dependent with a small constant step (sequential allocation). */
  prediction?: PortPrediction;
}

export type ServerMessage =
  /** The first message on the main port: the probe port on the server's host (null: none), and how long an unpaired peer is kept. */
  | { v: ProtocolVersion; type: 'hello'; probePort: number | null; pairTimeoutMs: number }
  | { v: ProtocolVersion; type: 'observed'; endpoint: Endpoint }
  | { v: ProtocolVersion; type: 'registered'; observed: Endpoint }
  | { v: ProtocolVersion; type: 'ping'; id: number }
  | { v: ProtocolVersion; type: 'peer'; self: PeerInfo; peer: PeerInfo; startInMs: number }
  | { v: ProtocolVersion; type: 'error'; code: ErrorCode; message: string };

export type Decoded<T> = { ok: true; message: T } | { ok: false; code: ErrorCode; error: string };
