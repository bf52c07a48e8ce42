/** The capped line splitter (lib/core/lineSplitter.ts): whole lines, UTF-8 across chunks, and a cap that holds. */
import { describe, expect, it } from 'vitest';
import { LineSplitter, LineTooLongError } from '../../lib/core/lineSplitter.ts';

describe('LineSplitter', () => {
  it('returns complete lines, keeps the unfinished one, and takes "\\r\\n" as one end', () => {
    const lines = new LineSplitter(100);
    expect(lines.push('one\ntw')).toEqual(['one']);
    expect(lines.push('o\r')).toEqual([]);
    expect(lines.push('\n\nthree\r\n')).toEqual(['two', '', 'three']);
    expect(lines.push('a\rb\n')).toEqual(['a\rb']);
    expect(lines.push('last')).toEqual([]);
    expect(lines.rest()).toBe('last');
    expect(lines.rest()).toBe('');
  });

  it('keeps a UTF-8 character split across chunks whole', () => {
    const bytes = Buffer.from('héllo 🚀\n');
    const lines = new LineSplitter(100);
    const got: string[] = [];
    for (let i = 0; i < bytes.length; i++) got.push(...lines.push(bytes.subarray(i, i + 1)));
    expect(got).toEqual(['héllo 🚀']);
  });

  it('a line of exactly the cap passes; one byte more throws, with or without its newline', () => {
    expect(new LineSplitter(8).push('12345678\n')).toEqual(['12345678']);
    expect(new LineSplitter(8).push('12345678\r\n')).toEqual(['12345678']);
    expect(() => new LineSplitter(8).push('123456789\n')).toThrow(LineTooLongError);
    // The whole lines before the long one in the same chunk come with the error.
    let thrown: unknown;
    try {
      new LineSplitter(8).push('one\ntwo\n123456789');
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toMatchObject({ before: ['one', 'two'], bytes: 9 });
    const chunked = new LineSplitter(8);
    chunked.push('12345');
    expect(() => chunked.push('6789')).toThrow(/longer than 8 bytes/);
    // After the error nothing more is held or returned.
    expect(chunked.push('x\n')).toEqual([]);
    expect(chunked.heldBytes).toBe(0);
  });

  it('holds no more than the cap of a line that never ends, however much arrives', () => {
    const lines = new LineSplitter(1024);
    const chunk = Buffer.alloc(64 * 1024, 'a');
    let thrown: unknown;
    try {
      for (let i = 0; i < 1000; i++) lines.push(chunk);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(LineTooLongError);
    expect((thrown as LineTooLongError).bytes).toBe(64 * 1024);
    expect(lines.heldBytes).toBe(0);
  });
});
