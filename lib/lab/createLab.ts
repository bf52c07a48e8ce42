/**
 * A lab for a script (the `simopen/lab` API): built from a topology, commands and scripts run in its
 * hosts, torn down by close(), at exit and on SIGINT/SIGTERM/SIGHUP. As root the namespaces are made
 * directly; an ordinary user's script is executed again inside a user+network+mount namespace (as
 * lab.ts does), so in the calling process the call then never returns: it ends the process with the
 * copy's exit code.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { type Child, exitCodeOf, startScript } from '../core/childProcess.ts';
import { applyLab, probeLab, reconfigureRouter, teardownLab, teardownOnExit } from './buildLab.ts';
import { parseTopology, planLab } from './topology.ts';
import type { LabHost, LabPlan, RouterBehaviour, Topology } from './types.ts';
import { insideLabUserNamespace, reexecInLabUserNamespace } from './userNamespace.ts';

export interface LabOptions {
  /**
   * One router per private host (alice, bob, carol, ...): a Topology, or the text `lab.ts up` takes
   * ("eim:apdf:drop,edm:apdf:rst"). Default: alice and bob behind eim:apdf:drop routers.
   */
  topology?: Topology | string;
  /** Names the namespaces, simopen-lab-<id>-<host>: 1..12 of [a-z0-9]. Default: from this process's pid. */
  id?: string;
}

export interface ExecResult {
  /** Exit code, or 128 + the signal's number. */
  code: number;
  stdout: string;
  stderr: string;
}

export interface Lab {
  readonly id: string;
  readonly plan: LabPlan;
  /** internet, rv, and per private host its router (alice-nat) and itself (alice). */
  readonly hosts: readonly LabHost[];
  /** The host of that name; throws if the lab has none. */
  host(name: string): LabHost;
  /** Runs a command in a host and waits for it (a non-zero exit is a result, not an error). */
  exec(host: string, command: string[]): Promise<ExecResult>;
  /** Starts a TypeScript or JavaScript file with Node and the tsx loader in a host; close() stops it. */
  spawnScript(host: string, script: string, args?: string[]): Child;
  /** Gives the router in front of `host` (alice, not alice-nat) another behaviour. */
  reconfigureRouter(host: string, behaviour: RouterBehaviour): void;
  /** Stops the scripts it started and removes the lab. Safe to call twice. */
  close(): Promise<void>;
}

let labsMade = 0;

/**
 * Builds the lab. Throws UsageError for a bad topology text, and Error when no lab can be built here
 * (ip or nft missing; not root and no user namespaces) or building fails (what was built is removed).
 */
export async function createLab(options: LabOptions = {}): Promise<Lab> {
  const topology = typeof options.topology === 'object' ? options.topology : parseTopology(options.topology);
  const id = options.id ?? `${process.pid}l${labsMade + 1}`;
  const plan = planLab(id, topology);
  const probe = probeLab();
  if (!probe.ok) throw new Error(`cannot build a lab here: ${probe.reason}`);
  if (process.getuid?.() !== 0 && !insideLabUserNamespace()) process.exit(await reexecInLabUserNamespace());
  labsMade += 1;
  applyLab(plan);
  const disarm = teardownOnExit(plan, () => process.exit(130));
  const started = new Set<Child>();
  let closed = false;

  const host = (name: string): LabHost => {
    const found = plan.hosts.find((entry) => entry.name === name);
    if (!found)
      throw new Error(
        `no host '${name}' in lab ${id} (hosts: ${plan.hosts.map((entry) => entry.name).join(', ')})`,
      );
    return found;
  };

  return {
    id,
    plan,
    hosts: plan.hosts,
    host,
    exec(name, command) {
      const argv = ['netns', 'exec', host(name).namespace, ...command];
      return new Promise((resolve, reject) => {
        execFile('ip', argv, { maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
          const failure = error as (Error & { code?: number | string; signal?: NodeJS.Signals }) | null;
          // A string code is Node's (ip missing, output too large), not the command's exit.
          if (failure && typeof failure.code === 'string') return reject(failure);
          const code = failure
            ? exitCodeOf((failure.code as number | undefined) ?? null, failure.signal ?? null)
            : 0;
          resolve({ code, stdout, stderr });
        });
      });
    },
    spawnScript(name, script, args = []) {
      // Tied to us: if we die (even by SIGKILL, when the exit hook cannot run) it ends too.
      const child = startScript(path.resolve(script), args, { netns: host(name).namespace });
      started.add(child);
      return child;
    },
    reconfigureRouter(name, behaviour) {
      reconfigureRouter(plan, name, behaviour);
    },
    async close() {
      if (closed) return;
      closed = true;
      await Promise.all([...started].map((child) => child.stop()));
      const { problems } = teardownLab(plan);
      disarm();
      if (problems.length) throw new Error(`lab ${id}: ${problems.join('; ')}`);
    },
  };
}
