/**
 * Text that came from outside (a client, a server, a peer) made safe for a terminal or a line-based
 * log: control characters (an escape sequence, a NUL, a carriage return) would otherwise rewrite
 * what the reader sees, or forge log lines.
 */

const UNPRINTABLE_OR_ESCAPE = /[^\x20-\x7e]|\\/g;

const escapeOne = (char: string) =>
  char === '\\' ? '\\\\' : `\\u${(char.codePointAt(0) ?? 0).toString(16).padStart(4, '0')}`;

/** Every character outside printable ASCII as \uXXXX (a backslash as \\): one line, nothing hidden. */
export function escapeUnprintable(text: string): string {
  return text.replace(UNPRINTABLE_OR_ESCAPE, escapeOne);
}

const PLAIN = /^[\x21-\x7e]+$/;

/**
 * A value for a `key=value` log line: bare when it is plain printable text (no space, quote or
 * backslash), otherwise in double quotes with every other character escaped, so one value can never
 * look like two, or like a line of its own.
 */
export function logValue(value: string | number): string {
  const text = String(value);
  if (PLAIN.test(text) && !/["\\]/.test(text)) return text;
  return `"${escapeUnprintable(text).replaceAll('"', '\\"')}"`;
}
