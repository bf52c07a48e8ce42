/**
 * A punch agent runs inside one lab host (`lab.ts agent`) and performs hole punches on request, so
 * the matrix pays for a Node start once per host rather than once per punch. Requests and results
 * are JSON lines on stdin/stdout. After a punch the agent checks that data really flows: each side
 * sends one line over the direct connection and must read the other's.
 */
import type net from 'node:net';
import { createInterface } from 'node:readline';
import type { Child } from '../core/childProcess.ts';
import { LineSplitter } from '../core/lineSplitter.ts';
import { PunchError, punchThroughRendezvous } from '../rendezvous/client.ts';
import type { PunchOutcome, PunchRequest } from './types.ts';

/** The hello line is short: a peer sending more without a newline is not a punch agent. */
const MAX_HELLO_BYTES = 4096;

function readLine(socket: net.Socket, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const lines = new LineSplitter(MAX_HELLO_BYTES);
    const timer = setTimeout(
      () => done(new Error(`no line from the peer within ${timeoutMs} ms`)),
      timeoutMs,
    );
    const onData = (chunk: Buffer) => {
      try {
        const [line] = lines.push(chunk);
        if (line !== undefined) done(undefined, line);
      } catch (error) {
        done(error as Error);
      }
    };
    const onClose = () => done(new Error('the peer closed before sending its line'));
    const done = (error?: Error, line?: string) => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', onClose);
      if (error) reject(error);
      else resolve(line ?? '');
    };
    socket.on('data', onData);
    socket.once('close', onClose);
  });
}

export async function performPunch(name: string, request: PunchRequest): Promise<PunchOutcome> {
  let sockets = 0;
  try {
    const result = await punchThroughRendezvous({
      server: request.server,
      local: { port: request.localPort },
      session: request.session,
      secret: request.secret,
      name,
      deadlineMs: request.deadlineMs,
      singleAttempt: request.singleAttempt,
      retryIntervalMs: request.retryIntervalMs,
      extraDelayMs: request.extraDelayMs,
      serverTimeoutMs: 20_000,
      predictPorts: request.predict ?? 0,
    });
    const { socket } = result;
    sockets = result.sockets;
    socket.on('error', () => {});
    try {
      if (request.keepAliveMs) socket.setKeepAlive(true, request.keepAliveMs);
      // Idle first (mapping timeouts): does the connection outlive the quiet?
      if (request.quietMs) await new Promise((resolve) => setTimeout(resolve, request.quietMs));
      socket.write(`hello from ${name} in ${request.session}\n`);
      const received = await readLine(socket, 5000);
      return {
        id: request.id,
        ok: received.startsWith('hello from '),
        elapsedMs: result.elapsedMs,
        attempts: result.attempts,
        sockets: result.sockets,
        errors: result.errors,
        remote: `${socket.remoteAddress}:${socket.remotePort}`,
        received,
      };
    } finally {
      socket.end();
      setTimeout(() => socket.destroy(), 2000).unref();
    }
  } catch (error) {
    const punch = error instanceof PunchError ? error : undefined;
    return {
      id: request.id,
      ok: false,
      elapsedMs: punch?.elapsedMs ?? 0,
      attempts: punch?.attempts ?? 0,
      sockets: punch?.sockets ?? sockets,
      errors: punch?.errors ?? {},
      code: punch?.code ?? 'ECHAT',
      error: (error as Error).message,
    };
  }
}

/** The agent's main loop: one request per stdin line, one outcome per stdout line; ends with stdin. */
export async function runPunchAgent(name: string): Promise<void> {
  process.stdout.write(`${JSON.stringify({ ready: name })}\n`);
  const pending = new Set<Promise<void>>();
  for await (const line of createInterface({ input: process.stdin })) {
    if (!line.trim()) continue;
    const request = JSON.parse(line) as PunchRequest;
    const task = performPunch(name, request).then((outcome) => {
      process.stdout.write(`${JSON.stringify(outcome)}\n`);
    });
    pending.add(task);
    task.finally(() => pending.delete(task));
  }
  await Promise.all(pending);
}

/** The host side of an agent: sends requests, matches outcomes by id. */
export class PunchAgentHandle {
  private readonly waiting = new Map<number, (outcome: PunchOutcome) => void>();

  constructor(readonly agent: Child) {
    agent.onLine((line) => {
      if (!line.startsWith('{"id"')) return;
      const outcome = JSON.parse(line) as PunchOutcome;
      this.waiting.get(outcome.id)?.(outcome);
      this.waiting.delete(outcome.id);
    });
  }

  ready(): Promise<string> {
    return this.agent.waitForLine(/^\{"ready"/, 60_000);
  }

  punch(request: PunchRequest): Promise<PunchOutcome> {
    return new Promise((resolve, reject) => {
      this.waiting.set(request.id, resolve);
      const gone = (why: string) => {
        if (this.waiting.delete(request.id)) reject(new Error(`punch agent ${why}`));
      };
      this.agent.exited.then(
        (code) => gone(`exited ${code}`),
        (error: Error) => gone(`could not start: ${error.message}`),
      );
      this.agent.process.stdin?.write(`${JSON.stringify(request)}\n`);
    });
  }
}
