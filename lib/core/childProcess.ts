/**
 * Child processes, one way for the whole project: start a command or a simopen script (node with the
 * tsx loader, optionally inside a network namespace), collect its output, wait for a line, stop it,
 * relay our signals to it, read its exit code the shell's way, and signal every running one when we
 * are interrupted.
 *
 * A child can be tied to us: it gets one end of a pipe as fd 3 and ends itself (SIGTERM, so its own
 * cleanup runs) when that pipe reaches EOF, which happens when we exit however we exit, SIGKILL
 * included. Node has no prctl(PR_SET_PDEATHSIG), and a pipe also survives `ip netns exec`, unshare and
 * nsenter, which all exec the next program with our descriptors.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fstatSync } from 'node:fs';
import net from 'node:net';
import { constants } from 'node:os';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** The repository this code runs from: scripts are started from here, with its tsx. */
export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** A tied child finds its end of the pipe to its parent in the fd this variable names. */
const PARENT_FD_ENV = 'SIMOPEN_PARENT_FD';
const PARENT_FD = 3;
/** Loaded into every tied node child before its script: calls endWithParent(). */
export const END_WITH_PARENT_PRELOAD = pathToFileURL(
  fileURLToPath(new URL('./endWithParentPreload.ts', import.meta.url)),
).href;

/** The signals that interrupt a script (each exits 130 after cleaning up). */
export const INTERRUPT_SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/** A child's exit code, or 128 + the signal's number when a signal ended it (as a shell reports it). */
export function exitCodeOf(code: number | null, signal: NodeJS.Signals | null): number {
  return code ?? 128 + (signal ? (constants.signals[signal] ?? 0) : 0);
}

export interface ChildOptions {
  /** Working directory: ours by default, REPO_ROOT for scripts (their `--import tsx` resolves from it). */
  cwd?: string;
  /** The whole environment of the child; ours by default. */
  env?: NodeJS.ProcessEnv;
  /**
   * stdin: a pipe we can write to (default), nothing, ours, or another child's output (a stream with
   * a descriptor, such as child.process.stdout of a child started with output 'stream': a pipeline).
   */
  stdin?: 'pipe' | 'ignore' | 'inherit' | NodeJS.ReadableStream;
  /**
   * stdout and stderr: collected (default; read with stdout(), stderr(), output, waitFor), or passed
   * straight to ours ('inherit'), or both to our stderr ('stderr', when our stdout is a report), or
   * piped and left to the caller ('stream': read child.process.stdout and stderr; nothing is kept,
   * for a child that writes without end), or discarded ('ignore').
   */
  output?: 'collect' | 'inherit' | 'stderr' | 'stream' | 'ignore';
  /** Also copy the child's stderr to ours as it comes (progress lines), while collecting it. */
  echoStderr?: boolean;
  /**
   * Keep what was collected (default true). A long-lived child that answers line by line (an
   * `ip -batch` that acknowledges every request) sets false: its lines go to onLine listeners only,
   * so memory does not grow with its lifetime (output, stdout() and stderr() then stay empty).
   */
  retain?: boolean;
  /** Run inside this named network namespace (`ip netns exec`; needs root). */
  netns?: string;
  /** Tie the child to us: it ends when we do (see the top of this file). Node scripts only. */
  tied?: boolean;
  /** Its own process group: a terminal's Ctrl-C reaches only us, and we decide what to forward. */
  detached?: boolean;
  /**
   * A Node child with an IPC channel (child.process.send, 'message'; structured clone, so typed arrays
   * pass): it comes after the tie's pipe, as fd 3 or 4.
   */
  ipc?: boolean;
  /** Our descriptors the child gets too, in order after the tie's pipe and the IPC channel (passedFd). */
  passFds?: number[];
}

/** The descriptor number in the child of passFds[index]. */
export function passedFd(options: Pick<ChildOptions, 'tied' | 'ipc'>, index: number): number {
  return PARENT_FD + (options.tied ? 1 : 0) + (options.ipc ? 1 : 0) + index;
}

export interface Child {
  readonly process: ChildProcess;
  /** Undefined only if the spawn failed. */
  readonly pid: number | undefined;
  /** Every line of stdout and stderr so far, in the order they came. */
  readonly output: string[];
  stdout(): string;
  stderr(): string;
  /** Resolves once the stdout or the stderr text so far matches; rejects if the child exits first. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<void>;
  /** Resolves with the first line (of either stream) matching; rejects if the child exits first. */
  waitForLine(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** Calls back for every later line, of either stream (which one is the second argument). */
  onLine(listener: (line: string, stream: 'stdout' | 'stderr') => void): void;
  /** Exit code the shell's way; rejects only if the command could not be started at all. */
  readonly exited: Promise<number>;
  running(): boolean;
  /** Sends the signal (SIGTERM by default) if it still runs, and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number>;
}

/** Does a process of this pid exist (one we may not signal counts: it exists)? */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Children started here that have not exited yet, for signalRunningChildren. */
const running = new Set<Child>();

const DEFAULT_WAIT_MS = 60_000;
/** How long a child's output may still arrive after it exited. */
const OUTPUT_DRAIN_MS = 1000;

/**
 * Resolves with a child's exit code (the shell's way) once it has exited and its output streams have
 * closed (or at most OUTPUT_DRAIN_MS later); rejects only if it could not be started at all.
 */
export function exitOf(child: ChildProcess): Promise<number> {
  return new Promise((resolve, reject) => {
    // After a successful spawn an error (a failed kill, say) is not the end: 'close' still comes.
    child.on('error', (error) => {
      if (child.pid === undefined) reject(error);
    });
    child.once('close', (code, signal) => resolve(exitCodeOf(code, signal)));
    // A grandchild that inherited the output pipes would hold 'close' back for as long as it lives:
    // once the child itself has exited, its output gets a moment to drain, then the pipes are closed.
    // An IPC channel can hold 'close' back for good (seen after disconnect()): the exit is the end then.
    child.once('exit', (code, signal) => {
      if (!child.stdout && !child.stderr) return resolve(exitCodeOf(code, signal));
      setTimeout(() => {
        for (const stream of child.stdio) stream?.destroy();
        resolve(exitCodeOf(code, signal));
      }, OUTPUT_DRAIN_MS).unref();
    });
  });
}

export function startChild(command: string, args: string[], options: ChildOptions = {}): Child {
  const argv = options.netns ? ['ip', 'netns', 'exec', options.netns, command, ...args] : [command, ...args];
  const output = options.output ?? 'collect';
  // 'stderr': both go to our fd 2.
  const outputStdio =
    output === 'collect' || output === 'stream'
      ? 'pipe'
      : output === 'inherit' || output === 'ignore'
        ? output
        : 2;
  const env = { ...(options.env ?? process.env) };
  if (options.tied) env[PARENT_FD_ENV] = String(PARENT_FD);
  else delete env[PARENT_FD_ENV];
  const child = spawn(argv[0] as string, argv.slice(1), {
    cwd: options.cwd,
    env,
    detached: options.detached ?? false,
    ...(options.ipc ? { serialization: 'advanced' as const } : {}),
    stdio: [
      (options.stdin ?? 'pipe') as 'pipe',
      outputStdio,
      outputStdio,
      ...(options.tied ? (['pipe'] as const) : []),
      ...(options.ipc ? (['ipc'] as const) : []),
      ...(options.passFds ?? []),
    ],
  });

  const lines: string[] = [];
  const text = { stdout: '', stderr: '' };
  const lineListeners = new Set<(line: string, stream: 'stdout' | 'stderr') => void>();
  const textWatchers = new Set<() => void>();
  const retain = options.retain ?? true;
  const collect = (stream: NodeJS.ReadableStream | null, name: 'stdout' | 'stderr') => {
    if (!stream) return;
    let partial = '';
    const emit = (line: string) => {
      if (retain) lines.push(line);
      for (const listener of [...lineListeners]) listener(line, name);
    };
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      if (retain) text[name] += chunk;
      if (name === 'stderr' && options.echoStderr) process.stderr.write(chunk);
      const parts = (partial + chunk).split('\n');
      partial = parts.pop() ?? '';
      for (const line of parts) emit(line.endsWith('\r') ? line.slice(0, -1) : line);
      for (const check of [...textWatchers]) check();
    });
    stream.on('end', () => {
      if (partial) emit(partial);
      partial = '';
    });
  };
  if (output !== 'stream') {
    collect(child.stdout, 'stdout');
    collect(child.stderr, 'stderr');
  }

  let ended = false;
  const exited = exitOf(child);
  const end = () => {
    ended = true;
    running.delete(handle);
  };
  // Also keeps a failed spawn from being an unhandled rejection when nobody awaits `exited`.
  exited.then(end, end);

  const tail = () => lines.slice(-5).join(' | ');
  const describe = () => `${argv.slice(0, 6).join(' ')}${argv.length > 6 ? ' ...' : ''}`;

  /** Resolves when `found()` gives a value; rejects on exit or after timeoutMs. */
  const waitUntil = <T>(
    found: () => T | undefined,
    watchers: Set<() => void>,
    what: string,
    timeoutMs: number,
  ): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const settle = (error?: Error, value?: T) => {
        clearTimeout(timer);
        watchers.delete(check);
        if (error) reject(error);
        else resolve(value as T);
      };
      const check = () => {
        const value = found();
        if (value !== undefined) settle(undefined, value);
      };
      const timer = setTimeout(
        () => settle(new Error(`${describe()}: no ${what} within ${timeoutMs} ms; last lines: ${tail()}`)),
        timeoutMs,
      );
      watchers.add(check);
      check();
      exited.then(
        (code) => {
          if (!watchers.has(check)) return;
          check();
          if (watchers.has(check))
            settle(new Error(`${describe()} exited ${code} before printing ${what}; last lines: ${tail()}`));
        },
        (error: Error) => settle(new Error(`${describe()}: ${error.message}`)),
      );
    });

  const lineWatchers = new Set<() => void>();
  lineListeners.add(() => {
    for (const check of [...lineWatchers]) check();
  });

  const handle: Child = {
    process: child,
    pid: child.pid,
    output: lines,
    stdout: () => text.stdout,
    stderr: () => text.stderr,
    waitFor: (pattern, timeoutMs = DEFAULT_WAIT_MS) =>
      waitUntil(
        () => (pattern.test(text.stdout) || pattern.test(text.stderr) ? true : undefined),
        textWatchers,
        `output matching ${pattern}`,
        timeoutMs,
      ).then(() => undefined),
    waitForLine: (pattern, timeoutMs = DEFAULT_WAIT_MS) =>
      waitUntil(
        () => lines.find((line) => pattern.test(line)),
        lineWatchers,
        `line matching ${pattern}`,
        timeoutMs,
      ),
    onLine: (listener) => {
      lineListeners.add(listener);
    },
    exited,
    running: () => !ended && child.exitCode === null && child.signalCode === null,
    stop: (signal = 'SIGTERM') => {
      if (handle.running()) child.kill(signal);
      return exited;
    },
  };
  if (child.pid !== undefined) running.add(handle);
  return handle;
}

/** argv that runs a TypeScript script (path relative to REPO_ROOT, or absolute) with the tsx loader. */
export function scriptCommand(script: string, args: string[], tied = false): string[] {
  return [
    process.execPath,
    '--import',
    'tsx',
    ...(tied ? ['--import', END_WITH_PARENT_PRELOAD] : []),
    script,
    ...args,
  ];
}

/** Starts a simopen script (e.g. 'scripts/peer.ts'), tied to us unless the options say otherwise. */
export function startScript(script: string, args: string[], options: ChildOptions = {}): Child {
  const tied = options.tied ?? true;
  const [command, ...rest] = scriptCommand(script, args, tied);
  return startChild(command as string, rest, { ...options, cwd: options.cwd ?? REPO_ROOT, tied });
}

export interface ChildRun {
  /** Exit code, or 128 + signal number. */
  code: number;
  stdout: string;
  stderr: string;
}

/** Starts a command, waits for it, and returns its exit code and output. */
export async function runChild(
  command: string,
  args: string[],
  options: ChildOptions = {},
): Promise<ChildRun> {
  const child = startChild(command, args, { stdin: 'ignore', ...options });
  const code = await child.exited;
  return { code, stdout: child.stdout(), stderr: child.stderr() };
}

/** Forwards a signal to every running child started here; returns how many there were. */
export function signalRunningChildren(signal: NodeJS.Signals): number {
  for (const child of running) child.process.kill(signal);
  return running.size;
}

/**
 * Relays SIGINT/SIGTERM/SIGHUP to a child in its own process group until it exits, and resolves with
 * its exit code. npm/npx/tsx wrappers relay the terminal's signal to us as well: the same signal twice
 * within 500 ms is forwarded once, so a second one cannot interrupt the child's cleanup.
 */
export function waitRelayingSignals(child: Child | ChildProcess, label?: string): Promise<number> {
  const [target, exited] = 'exited' in child ? [child.process, child.exited] : [child, exitOf(child)];
  let last = { signal: '', at: 0 };
  const forward = (signal: NodeJS.Signals) => {
    const now = Date.now();
    if (last.signal === signal && now - last.at < 500) return;
    last = { signal, at: now };
    target.kill(signal);
  };
  for (const signal of INTERRUPT_SIGNALS) process.on(signal, forward);
  const stopRelaying = () => {
    for (const signal of INTERRUPT_SIGNALS) process.off(signal, forward);
  };
  exited.then(stopRelaying, stopRelaying);
  if (!label) return exited;
  // A child ended by a signal (SIGKILL from outside, the OOM killer) printed nothing about it: say so.
  return exited.then((code) => {
    if (target.signalCode)
      process.stderr.write(
        `${label} (pid ${target.pid}) was killed by ${target.signalCode}: no report (exit ${code})\n`,
      );
    return code;
  });
}

/**
 * Runs this script again (same node flags, so the tsx loader comes along) under `prefix` (unshare ...),
 * with our stdio, in its own process group, tied to us, relaying our signals; resolves with its exit
 * code (128+N for a signal).
 */
export function reexecSelf(
  prefix: string[],
  extraEnv: Record<string, string>,
  label?: string,
): Promise<number> {
  const [command, ...args] = [
    ...prefix,
    process.execPath,
    ...process.execArgv,
    '--import',
    END_WITH_PARENT_PRELOAD,
    ...process.argv.slice(1),
  ];
  const child = startChild(command as string, args, {
    env: { ...process.env, ...extraEnv },
    stdin: 'inherit',
    output: 'inherit',
    tied: true,
    detached: true,
  });
  return waitRelayingSignals(child, label);
}

let watchingParent = false;

/**
 * In a tied child: end (SIGTERM to ourselves, so the usual cleanup runs) when the parent's end of the
 * pipe closes. Does nothing in a child that is not tied. Idempotent.
 */
export function endWithParent(): void {
  const fd = Number(process.env[PARENT_FD_ENV]);
  // Our own children must not mistake the variable for theirs.
  delete process.env[PARENT_FD_ENV];
  if (watchingParent || !Number.isInteger(fd) || fd < 3) return;
  try {
    // Only a pipe or socket can be the link; anything else there means a wrapper closed it.
    const stat = fstatSync(fd);
    if (!stat.isSocket() && !stat.isFIFO()) return;
    const pipe = new net.Socket({ fd, readable: true, writable: false });
    watchingParent = true;
    pipe.on('error', () => {});
    pipe.once('close', () => process.kill(process.pid, 'SIGTERM'));
    pipe.resume();
    pipe.unref();
  } catch {
    // No usable descriptor (run by hand with the variable set): nothing to watch.
  }
}
