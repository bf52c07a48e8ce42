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

/** node:util parseArgs, strict, with its errors turned into a one-line UsageError naming the flag. */
export function parseFlags<T extends Options>(args: string[], options: T, allowPositionals = true) {
  try {
    return parseArgs({ args, options, allowPositionals, strict: true });
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    // parseArgs messages are multi-line for unknown options; keep the first line.
    throw new UsageError(message.split('\n')[0]?.replace(/\. To specify a positional.*$/, '') ?? message);
  }
}

const durationUnitsMs: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** "250ms", "30s", "2m", "1h", "1.5s"; a bare number means seconds. Returns milliseconds. */
export function parseDuration(text: string, name: string): number {
  const match = /^(\d+(?:\.\d+)?)(us|ms|s|m|h)?$/.exec(text.trim());
  if (!match) throw new UsageError(`${name}: invalid duration '${text}' (examples: 500ms, 30s, 2m)`);
  const value = Number(match[1]) * (durationUnitsMs[match[2] ?? 's'] ?? 1000);
  if (!Number.isFinite(value)) throw new UsageError(`${name}: invalid duration '${text}'`);
  return value;
}

/** A whole number in [min, max]; accepts 10000, 10_000, 10k, 1M. */
export function parseCount(text: string, name: string, min: number, max: number): number {
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
