/** The vocabulary of a peer: what a dial takes and gives, the peer's options, and how a chat ends. Leaf module. */
import type net from 'node:net';
import type { Readable, Writable } from 'node:stream';
import type { Endpoint } from '../core/types.ts';

export interface DialOptions {
  /** Our side; host defaults to the wildcard of the remote's family. */
  local: { host?: string; port: number };
  remote: Endpoint;
  /** Pause between attempts. 0 retries at once, as the classic program does (best on loopback). */
  retryIntervalMs?: number;
  /** Give up after this long (default 30 s). */
  deadlineMs?: number;
  signal?: AbortSignal;
}

export interface DialResult {
  socket: net.Socket;
  attempts: number;
  elapsedMs: number;
  /** Count per error code seen while retrying. */
  errors: Record<string, number>;
}

/** A dial's endpoints, checked and resolved before any socket is opened (prepareDial). */
export interface PreparedDial {
  /** Resolved local endpoint (the wildcard of the remote's family when no host was given). */
  local: Endpoint;
  /** Resolved remote endpoint. */
  target: Endpoint;
  family: 4 | 6;
}

/** --rendezvous: learn the peer's public endpoint from a rendezvous server, then punch (lib/rendezvous/client.ts). */
export interface RendezvousChoice {
  server: Endpoint;
  session: string;
  secret: string;
}

export interface PeerOptions {
  /** Absent with --rendezvous, which learns it from the server. */
  remote?: Endpoint;
  rendezvous?: RendezvousChoice;
  local: { host?: string; port: number };
  timeoutMs: number;
  retryIntervalMs: number;
  /** After our FIN, how long to wait for the peer's before closing anyway. */
  lingerMs: number;
  prefix: string;
  /** --max-line: the longest line, in bytes without its newline, received or sent. */
  maxLineBytes: number;
  /** Print the connection's TCP state changes as they happen (lib/trace/connectionLiveTrace.ts). */
  trace: boolean;
}

export type ChatEnd =
  | { kind: 'quit'; peerClosed: boolean }
  | { kind: 'peer-closed' }
  | { kind: 'lost'; code: string; message: string }
  | { kind: 'interrupted'; signal: string }
  /** A line over --max-line: the peer's (the connection was dropped) or ours (not sent; we closed). */
  | { kind: 'line-too-long'; side: 'received' | 'typed' }
  /** Our stdout was closed (a reader like `head` went away): we closed the connection. */
  | { kind: 'output-closed'; code: string };

export interface ChatOptions {
  socket: net.Socket;
  input: Readable;
  output: Writable;
  /**
   * When input is a terminal: the terminal to echo typed lines to. The terminal is then read in raw
   * mode with readline's own line editing, which has no line limit (canonical mode cuts at 4095 bytes).
   */
  terminal?: Writable;
  /** Status lines (connected, closed, ...): stderr in peer.ts, so stdout carries only the chat. */
  status: (line: string) => void;
  prefix: string;
  lingerMs: number;
  /** The longest line, in bytes without its newline, received or sent (--max-line). */
  maxLineBytes: number;
  /** Aborting ends the chat as interrupted; the reason (a signal name) is reported. */
  signal?: AbortSignal;
}
