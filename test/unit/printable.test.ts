/** Escaping text from outside before it reaches a terminal or a log (lib/core/printable.ts). */
import { describe, expect, it } from 'vitest';
import { escapeUnprintable, logValue } from '../../lib/core/printable.ts';

describe('printable text', () => {
  it('escapes every character outside printable ASCII, and the backslash', () => {
    expect(escapeUnprintable('x\u001b[2K\u001b[1Gforged\u0000')).toBe('x\\u001b[2K\\u001b[1Gforged\\u0000');
    expect(escapeUnprintable('a\r\nb\u007f\u009b\u2028')).toBe('a\\u000d\\u000ab\\u007f\\u009b\\u2028');
    expect(escapeUnprintable('back\\slash')).toBe('back\\\\slash');
    expect(escapeUnprintable('plain text, 100%')).toBe('plain text, 100%');
  });

  it('a log value is bare only when plain; otherwise quoted, escaped, on one line', () => {
    expect(logValue('127.0.0.1:5000')).toBe('127.0.0.1:5000');
    expect(logValue(42)).toBe('42');
    expect(logValue('two words')).toBe('"two words"');
    expect(logValue('')).toBe('""');
    expect(logValue('say "hi"')).toBe('"say \\"hi\\""');
    expect(logValue('x\u001b[2K\u001b[1Gforged\u0000')).toBe('"x\\u001b[2K\\u001b[1Gforged\\u0000"');
    expect(logValue('a\nfake=line')).toBe('"a\\u000afake=line"');
    expect(logValue('héllo')).toBe('"h\\u00e9llo"');
    for (const value of ['\u0000', '\u001b', '\n', '\r', '\u007f', '\u0085', '\u2029'])
      expect(logValue(`a${value}b`)).toMatch(/^"[\x20-\x7e]*"$/);
  });
});
