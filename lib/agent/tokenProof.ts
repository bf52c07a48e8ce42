/**
 * Mutual authentication on the control channel without sending the token: each end proves it knows
 * the shared token with an HMAC-SHA256 over both ends' fresh nonces (challenge-response). The agent's
 * hello carries its nonce; the coordinator answers with its own nonce and its proof; the agent checks
 * it and answers with its proof. A replayed proof is useless: the other end's nonce is new each time.
 * The channel is authenticated, not encrypted: run it on a network you trust (a lab's management
 * network, a cluster's).
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** A fresh nonce, base64url. */
export function newNonce(): string {
  return randomBytes(16).toString('base64url');
}

/** A token for a local run: 32 random bytes, base64url. */
export function newToken(): string {
  return randomBytes(32).toString('base64url');
}

function proof(token: string, label: string, first: string, second: string, agent: string): string {
  return createHmac('sha256', token)
    .update(`simopen-agent/${label}\n${first}\n${second}\n${agent}`)
    .digest('base64url');
}

/** The coordinator's proof, over the agent's nonce first. */
export function coordinatorProof(
  token: string,
  agentNonce: string,
  coordinatorNonce: string,
  agent: string,
): string {
  return proof(token, 'coordinator', agentNonce, coordinatorNonce, agent);
}

/** The agent's proof, over the coordinator's nonce first (so it is never the coordinator's proof). */
export function agentProof(
  token: string,
  agentNonce: string,
  coordinatorNonce: string,
  agent: string,
): string {
  return proof(token, 'agent', coordinatorNonce, agentNonce, agent);
}

/** Constant-time comparison of two proofs. */
export function proofsMatch(expected: string, given: string): boolean {
  const a = Buffer.from(expected);
  const b = Buffer.from(given);
  return a.length === b.length && timingSafeEqual(a, b);
}
