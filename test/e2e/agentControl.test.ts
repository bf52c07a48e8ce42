/**
 * An agent started by hand (`stress.ts agent --listen 127.0.0.1:0 --token T`), reached over real TCP
 * by the coordinator's client: a wrong token is refused with a line on both ends; malformed and
 * oversized frames drop only their own connection (logged); the agent then still serves a coordinator
 * with the right token; SIGTERM ends it with 130. No namespaces: loopback, a kernel-chosen port.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import {
  CONTROL_VERSION,
  FRAME_HEADER_BYTES,
  FRAME_MAGIC,
  MAX_PREAUTH_FRAME_BYTES,
} from '../../lib/agent/types.ts';
import { AgentClient, AgentStartError } from '../../lib/coordinator/agentClient.ts';
import type { AgentSpec } from '../../lib/coordinator/types.ts';
import type { Child } from '../../lib/core/childProcess.ts';
import { repoRoot, runScript } from '../helpers/runScript.ts';

const started: Child[] = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map((child) => child.stop('SIGKILL')));
});

async function startAgent(token: string, name: string): Promise<{ agent: Child; port: number }> {
  const agent = runScript('stress', ['agent', '--listen', '127.0.0.1:0', '--name', name, '--workers', '1'], {
    SIMOPEN_AGENT_TOKEN: token,
  });
  started.push(agent);
  const line = await agent.waitForLine(/listening on 127\.0\.0\.1:\d+/, 60_000);
  return { agent, port: Number(/:(\d+)$/.exec(line.trim())?.[1]) };
}

function spec(name: string, port: number): AgentSpec {
  return {
    name,
    control: { host: '127.0.0.1', port },
    bindAddress: '127.0.0.1',
    publicAddress: '127.0.0.1',
    sharedClock: true,
    where: 'loopback',
  };
}

/** Sends raw bytes, resolves when the agent closes the connection. */
function sendRaw(port: number, bytes: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port }, () => socket.write(bytes));
    socket.on('data', () => {});
    socket.on('error', reject);
    socket.on('close', () => resolve());
  });
}

describe('stress.ts agent, started by hand', () => {
  it('refuses a wrong token on both ends, drops malformed and oversized frames alone, then serves the right token', async () => {
    const { agent, port } = await startAgent('the-right-token', 'solo');
    const options = { silenceMs: 5000, connectTimeoutMs: 5000 };

    const wrong = AgentClient.connect(spec('solo', port), { ...options, token: 'a-wrong-token' });
    await expect(wrong).rejects.toThrow(AgentStartError);
    await expect(wrong).rejects.toThrow(
      /agent solo: 127\.0\.0\.1:\d+: refused: "agent solo refused: wrong token" \(EAUTH\)/,
    );
    await agent.waitFor(/refused the coordinator at 127\.0\.0\.1:\d+: wrong token/, 10_000);

    // Not our protocol at all.
    await sendRaw(port, Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    await agent.waitFor(/dropped the connection from 127\.0\.0\.1:\d+: not a simopen control frame/, 10_000);
    // Our magic and version, a length over the limit before authentication: dropped from the header.
    const head = Buffer.alloc(FRAME_HEADER_BYTES);
    head.writeUInt16BE(FRAME_MAGIC, 0);
    head.writeUInt8(CONTROL_VERSION, 2);
    head.writeUInt32BE(MAX_PREAUTH_FRAME_BYTES + 1, 4);
    await sendRaw(port, head);
    await agent.waitFor(/over the limit of 4096/, 10_000);
    // Another protocol version.
    const other = Buffer.from(head);
    other.writeUInt8(CONTROL_VERSION + 1, 2);
    other.writeUInt32BE(2, 4);
    await sendRaw(port, Buffer.concat([other, Buffer.from('{}')]));
    await agent.waitFor(/the peer speaks control protocol version 2; this end speaks 1/, 10_000);

    // Nothing else harmed: the right token is served.
    const client = await AgentClient.connect(spec('solo', port), { ...options, token: 'the-right-token' });
    await agent.waitFor(/coordinator at 127\.0\.0\.1:\d+ authenticated/, 10_000);
    client.close();
    expect(agent.running()).toBe(true);
    expect(await agent.stop('SIGTERM')).toBe(130);
  }, 60_000);

  it('a coordinator that meets an agent answering under another name fails naming both', async () => {
    const { port } = await startAgent('t0ken-t0ken', 'alpha');
    const client = AgentClient.connect(spec('beta', port), {
      token: 't0ken-t0ken',
      silenceMs: 5000,
      connectTimeoutMs: 5000,
    });
    await expect(client).rejects.toThrow(/agent beta: .*answers as agent 'alpha', not 'beta'/);
  }, 60_000);
});

describe('stress.ts agent --help', () => {
  it('prints every option and its exit codes, and docs/distributed.md quotes it verbatim', () => {
    const run = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/stress.ts', 'agent', '--help'], {
      cwd: repoRoot,
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(run.status).toBe(0);
    expect(run.stderr).toBe('');
    for (const flag of ['--listen', '--token', '--name', '--workers', '--once', '--silence'])
      expect(run.stdout).toContain(flag);
    expect(run.stdout).toMatch(/exit codes: 0 ok, 1 .* 2 bad usage,\s+130 interrupted/);
    const doc = readFileSync(`${repoRoot}/docs/distributed.md`, 'utf8');
    // When this fails: paste the output of `npx tsx scripts/stress.ts agent --help` into the doc.
    expect(doc.includes(`$ npx tsx scripts/stress.ts agent --help\n${run.stdout}\`\`\``)).toBe(true);
  });
});
