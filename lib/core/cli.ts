/**
 * Shared command-line plumbing for the entry scripts: strict flag parsing with one-line errors,
 * value parsers (durations, ports, host:port), and a main wrapper that maps errors to exit codes.
 * Only option parsers and scripts import this; the run-time code takes its errors from errors.ts.
 */

import { isIP } from 'node:net';
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { EXIT, ExitError, UsageError } from './errors.ts';
import type { Endpoint, PortRange } from './types.ts';

type Options = NonNullable<ParseArgsConfig['options']>;

/**
 * An option that takes a value, followed by an argument that starts with '-': parseArgs calls that
 * "ambiguous". A negative number is handed to the option (its value parser says what is wrong with it);
 * anything else means the value is missing, which is said so.
 */
function joinDashValues<T extends Options>(args: string[], options: T): string[] {
  const joined: string[] = [];
  for (let index = 0; index < args.length; index += 1) {
    const arg = args[index] as string;
    joined.push(arg);
    if (arg === '--') {
      joined.push(...args.slice(index + 1));
      break;
    }
    const name = arg.startsWith('--')
      ? arg.slice(2)
      : /^-[^-]$/.test(arg)
        ? Object.keys(options).find((key) => options[key]?.short === arg[1])
        : undefined;
    const next = args[index + 1];
    if (name === undefined || options[name]?.type !== 'string' || next === undefined) continue;
    if (!next.startsWith('-') || next === '-') continue;
    if (/^-(\d|\.\d)/.test(next)) {
      joined[joined.length - 1] = `--${name}=${next}`;
      index += 1;
    } else throw new UsageError(missingValue(name, next));
  }
  return joined;
}

function missingValue(name: string, next: string | undefined): string {
  return next === undefined
    ? `--${name}: missing value`
    : `--${name}: missing value (the next argument, '${next}', is an option; write --${name}=${next} to give a value that starts with '-')`;
}

/** node:util parseArgs, strict, with its errors turned into a one-line UsageError naming the flag. */
export function parseFlags<T extends Options>(args: string[], options: T, allowPositionals = true) {
  const joined = joinDashValues(args, options);
  try {
    return parseArgs({ args: joined, options, allowPositionals, strict: true });
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    // parseArgs messages are multi-line for unknown options; keep the first line.
    throw new UsageError(message.split('\n')[0]?.replace(/\. To specify a positional.*$/, '') ?? message);
  }
}

const durationUnitsMs: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** The longest delay a Node timer takes (2^31 - 1 ms, about 24.8 days); a longer one fires after 1 ms. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * "250ms", "30s", "2m", "1h", "1.5s"; a bare number means seconds. Returns milliseconds, at most
 * MAX_TIMER_MS: every duration may end up in a timer.
 */
export function parseDuration(text: string, name: string): number {
  if (/^\s*-\d/.test(text)) throw new UsageError(`${name}: invalid duration '${text}': it is negative`);
  const match = /^(\d+(?:\.\d+)?)(us|ms|s|m|h)?$/.exec(text.trim());
  if (!match) throw new UsageError(`${name}: invalid duration '${text}' (examples: 500ms, 30s, 2m)`);
  const value = Number(match[1]) * (durationUnitsMs[match[2] ?? 's'] ?? 1000);
  if (!Number.isFinite(value)) throw new UsageError(`${name}: invalid duration '${text}'`);
  if (value > MAX_TIMER_MS)
    throw new UsageError(
      `${name}: ${text} is longer than the longest timer (${MAX_TIMER_MS} ms, about 24.8 days)`,
    );
  return value;
}

/** A whole number in [min, max]; accepts 10000, 10_000, 10k, 1M. */
export function parseCount(text: string, name: string, min: number, max: number): number {
  const negative = /^\s*-(\d|\.\d)/.test(text);
  if (negative) throw new UsageError(`${name}: ${text.trim()} is out of range ${min}..${max} (negative)`);
  const match = /^(\d+(?:\.\d+)?)([kKmM]?)$/.exec(text.replaceAll('_', '').trim());
  const scale = match?.[2] ? (match[2].toLowerCase() === 'k' ? 1e3 : 1e6) : 1;
  const value = match ? Number(match[1]) * scale : Number.NaN;
  if (!Number.isInteger(value)) throw new UsageError(`${name}: '${text}' is not a whole number`);
  if (value < min || value > max) throw new UsageError(`${name}: ${value} is out of range ${min}..${max}`);
  return value;
}

/** A TCP port 1..65535 (0 is refused: simultaneous open needs a fixed, known local port). */
export function parsePort(text: string, name: string): number {
  if (!/^\d+$/.test(text)) throw new UsageError(`${name}: '${text}' is not a port number (1..65535)`);
  const port = Number(text);
  if (port < 1 || port > 65535) throw new UsageError(`${name}: port ${port} is out of range 1..65535`);
  return port;
}

/** "LO-HI", or one port "P" (a range of one). */
export function parsePortRange(text: string, name: string): PortRange {
  const match = /^(\d+)(?:-(\d+))?$/.exec(text.trim());
  if (!match?.[1]) throw new UsageError(`${name}: '${text}' is not a port or a port range LO-HI`);
  const range = { first: parsePort(match[1], name), last: parsePort(match[2] ?? match[1], name) };
  if (range.first > range.last) throw new UsageError(`${name}: ${text} is empty (LO > HI)`);
  return range;
}

/** "4096", "64k"/"64KiB" (x1024), "1M"/"1MiB" (x1048576). */
export function parseBytes(text: string, name: string, max: number): number {
  const match = /^(\d+)\s*(k|K|KiB|m|M|MiB)?$/.exec(text.trim());
  if (!match) throw new UsageError(`${name}: '${text}' is not a byte count (examples: 0, 512, 64KiB, 1MiB)`);
  const unit = match[2]?.[0]?.toLowerCase();
  const value = Number(match[1]) * (unit === 'k' ? 1024 : unit === 'm' ? 1024 * 1024 : 1);
  if (value > max) throw new UsageError(`${name}: ${value} bytes is larger than the maximum ${max}`);
  return value;
}

/** A host name or IP literal (IPv6 may come in brackets); returns it without brackets. */
export function parseHost(text: string, name: string): string {
  const host = text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text;
  if (isIP(host)) return host;
  // Digits and dots only is meant as an IPv4 address (resolvers read '1.2.3' as 1.2.0.3): not a name.
  if (/^[\d.]+$/.test(host))
    throw new UsageError(`${name}: '${text}' is not an IPv4 address (four numbers 0..255) nor a host name`);
  // RFC 1123 host name: labels of letters, digits and hyphens.
  if (
    /^(?=.{1,253}$)([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$/.test(
      host,
    )
  )
    return host;
  throw new UsageError(`${name}: '${text}' is not a host name or IP address`);
}

/** "HOST:PORT" or "[V6]:PORT". */
export function parseHostPort(text: string, name: string): Endpoint {
  const match = /^(\[[^\]]+\]|[^:]+):(\d+)$/.exec(text);
  if (!match?.[1] || !match[2]) throw new UsageError(`${name}: '${text}' is not HOST:PORT`);
  return { host: parseHost(match[1], name), port: parsePort(match[2], name) };
}

/**
 * Runs a script's main function and exits with its code. A UsageError prints one line and exits 2;
 * an ExitError prints its message and exits with its code; anything else is a failure (exit 1).
 */
export function runMain(scriptName: string, usage: string, main: () => Promise<number>): void {
  main().then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      if (error instanceof UsageError) {
        process.stderr.write(`${scriptName}: ${error.message}\nusage: ${usage}\n`);
        process.exitCode = EXIT.usage;
      } else if (error instanceof ExitError) {
        process.stderr.write(`${scriptName}: ${error.message}\n`);
        process.exitCode = error.exitCode;
      } else {
        process.stderr.write(`${scriptName}: ${error instanceof Error ? error.message : String(error)}\n`);
        process.exitCode = EXIT.failure;
      }
    },
  );
}

/** NAME of `--NAME` or `--NAME=VALUE`; undefined for anything else. */
export function flagName(arg: string): string | undefined {
  return /^--([a-z-]+)(=|$)/.exec(arg)?.[1];
}

/** Does --FLAG come before a "--"? */
export function hasFlag(args: readonly string[], flag: string): boolean {
  for (const arg of args) {
    if (arg === '--') return false;
    if (flagName(arg) === flag) return true;
  }
  return false;
}

export interface OwnFlags {
  /** The value of each own flag given (`--flag V` or `--flag=V`). */
  values: Record<string, string>;
  /** Every flag named in args, own or not (switches included). */
  given: Set<string>;
  /** The other arguments, in order. */
  rest: string[];
}

/**
 * Takes `flags` (a value each, given once) and `switches` (no value) out of args before a "--", for a command that
 * has a few flags of its own and hands the rest, in order, to another parser (stress.ts --lab and
 * --agents). `missing` words the error for a flag without its value.
 */
export function takeOwnFlags(
  args: readonly string[],
  flags: readonly string[],
  switches: readonly string[] = [],
  missing: (flag: string, next: string | undefined) => string = missingValue,
): OwnFlags {
  const values: Record<string, string> = {};
  const given = new Set<string>();
  const rest: string[] = [];
  for (let index = 0; index < args.length; index += 1) {
    const arg = args[index] as string;
    if (arg === '--') {
      rest.push(...args.slice(index));
      break;
    }
    const name = flagName(arg);
    if (name) given.add(name);
    if (name !== undefined && switches.includes(name)) {
      if (arg.includes('=')) throw new UsageError(`--${name} takes no value`);
      continue;
    }
    if (name === undefined || !flags.includes(name)) {
      rest.push(arg);
      continue;
    }
    if (values[name] !== undefined) throw new UsageError(`--${name} given twice`);
    if (arg.includes('=')) values[name] = arg.slice(arg.indexOf('=') + 1);
    else {
      const value = args[index + 1];
      if (value === undefined || value.startsWith('--')) throw new UsageError(missing(name, value));
      values[name] = value;
      index += 1;
    }
  }
  return { values, given, rest };
}
