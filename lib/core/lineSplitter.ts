/**
 * Splits a byte stream into lines with a cap on one line's length. readline buffers a line without
 * limit: a sender that never sends a newline makes it grow until V8 refuses the string. Here the
 * cap is checked on every chunk, so what is held stays below maxBytes plus one chunk.
 */
import { StringDecoder } from 'node:string_decoder';

/**
 * A line longer than the cap: `bytes` is how much of it had arrived when that became known, and
 * `before` the complete lines of the same chunk that came before it (they are not lost).
 */
export class LineTooLongError extends Error {
  override name = 'LineTooLongError';
  constructor(
    readonly maxBytes: number,
    readonly bytes: number,
    readonly before: string[] = [],
  ) {
    super(`a line longer than ${maxBytes} bytes`);
  }
}

/**
 * Lines end with "\n" ("\r\n" counts as one end); a line's length is its bytes without that end.
 * `push` returns the complete lines in a chunk, decoded as UTF-8 (a character split across chunks
 * is kept whole), and throws LineTooLongError as soon as a line is known to be over maxBytes (with
 * the lines before it in that chunk); after that it holds and returns nothing.
 */
export class LineSplitter {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private failed = false;

  constructor(readonly maxBytes: number) {}

  push(chunk: Buffer | string): string[] {
    if (this.failed) return [];
    let data = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
    const lines: string[] = [];
    for (let newline = data.indexOf(0x0a); newline !== -1; newline = data.indexOf(0x0a)) {
      const length = this.pendingBytes + newline;
      // The "\r" of a "\r\n" is part of the end, not of the line.
      const cr = newline > 0 ? data[newline - 1] === 0x0d : this.endsWithCr();
      this.check(length - (cr ? 1 : 0), lines);
      const line = Buffer.concat([...this.pending, data.subarray(0, newline)], length);
      lines.push(new StringDecoder('utf8').end(cr ? line.subarray(0, length - 1) : line));
      this.pending = [];
      this.pendingBytes = 0;
      data = data.subarray(newline + 1);
    }
    if (data.length) {
      // A trailing "\r" may yet be the start of a "\r\n": allow for it until the next chunk.
      this.check(this.pendingBytes + data.length - (data[data.length - 1] === 0x0d ? 1 : 0), lines);
      this.pending.push(Buffer.from(data));
      this.pendingBytes += data.length;
    }
    return lines;
  }

  /** Bytes held of an unfinished line. */
  get heldBytes(): number {
    return this.pendingBytes;
  }

  /** The unfinished last line, at the end of the stream ("" if none). */
  rest(): string {
    const line = Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    return new StringDecoder('utf8').end(line);
  }

  private endsWithCr(): boolean {
    const last = this.pending.at(-1);
    return last !== undefined && last[last.length - 1] === 0x0d;
  }

  private check(bytes: number, before: string[]) {
    if (bytes <= this.maxBytes) return;
    this.failed = true;
    this.pending = [];
    this.pendingBytes = 0;
    throw new LineTooLongError(this.maxBytes, bytes, before);
  }
}
