/**
 * One chat over an open connection: typed lines go to the peer, the peer's lines to the output.
 * Every line is capped (maxLineBytes) on the way in and out, a slow side pauses the other instead of
 * buffering without bound, and each way a chat can end is told apart (quit, peer closed, reset,
 * interrupted, a line over the cap, our output closed).
 */
import readline from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { LineSplitter, LineTooLongError } from '../core/lineSplitter.ts';
import type { ChatEnd, ChatOptions } from './types.ts';

export const QUIT_COMMAND = '/quit';

/** Where typed lines come from: a pipe or file (split here), or a terminal (readline in raw mode). */
interface TypedInput {
  pause(): void;
  resume(): void;
  close(): void;
  /** Before a received line is printed on the terminal the user types in: clears the typed part. */
  beforeOutput(): void;
  /** After it: shows the typed part again. */
  afterOutput(): void;
}

interface TypedHandlers {
  line(line: string): void;
  tooLong(): void;
  end(): void;
  interrupt(signal: string): void;
}

function readPipedLines(input: Readable, maxLineBytes: number, on: TypedHandlers): TypedInput {
  const splitter = new LineSplitter(maxLineBytes);
  let closed = false;
  const onData = (chunk: Buffer | string) => {
    let lines: string[];
    try {
      lines = splitter.push(chunk);
    } catch (error) {
      if (!(error instanceof LineTooLongError)) throw error;
      for (const line of error.before) {
        if (closed) return;
        on.line(line);
      }
      if (closed) return;
      close();
      on.tooLong();
      return;
    }
    for (const line of lines) {
      if (closed) return;
      on.line(line);
    }
  };
  const onEnd = () => {
    if (closed) return;
    // A last line without a newline is still a line.
    const rest = splitter.rest();
    if (rest) on.line(rest);
    if (closed) return;
    close();
    on.end();
  };
  const close = () => {
    closed = true;
    input.off('data', onData);
    input.off('end', onEnd);
    input.off('error', onEnd);
    input.pause();
  };
  input.on('data', onData);
  input.on('end', onEnd);
  // A read error (a terminal hung up, say) ends the input like its end does.
  input.on('error', onEnd);
  return {
    pause: () => input.pause(),
    resume: () => {
      if (!closed) input.resume();
    },
    close,
    beforeOutput: () => {},
    afterOutput: () => {},
  };
}

function readTerminalLines(
  input: Readable,
  terminal: Writable,
  sharesOutput: boolean,
  maxLineBytes: number,
  on: TypedHandlers,
): TypedInput {
  const typed = readline.createInterface({
    input,
    output: terminal,
    terminal: true,
    prompt: '',
    crlfDelay: Number.POSITIVE_INFINITY,
  });
  let closed = false;
  typed.on('line', (line) => {
    if (closed) return;
    if (Buffer.byteLength(line) > maxLineBytes) on.tooLong();
    else on.line(line);
  });
  typed.on('close', () => {
    if (closed) return;
    closed = true;
    on.end();
  });
  // Raw mode: Ctrl-C arrives as a key, not as a signal.
  typed.on('SIGINT', () => on.interrupt('SIGINT'));
  return {
    // A person types slower than any connection drains.
    pause: () => {},
    resume: () => {},
    close: () => {
      if (closed) return;
      closed = true;
      typed.close();
    },
    beforeOutput: () => {
      if (closed || !sharesOutput) return;
      readline.moveCursor(terminal, 0, -typed.getCursorPos().rows);
      readline.cursorTo(terminal, 0);
      readline.clearScreenDown(terminal);
    },
    afterOutput: () => {
      if (!closed && sharesOutput) typed.prompt(true);
    },
  };
}

export function runChat(options: ChatOptions): Promise<ChatEnd> {
  const { socket, input, output, status, prefix, lingerMs, maxLineBytes, signal } = options;
  socket.setNoDelay(true);
  return new Promise<ChatEnd>((resolve) => {
    let ended = false;
    let halfClosed = false;
    let outputOpen = true;
    let waitingForSocketDrain = false;
    /** How the chat ends once the peer's FIN (or the linger bound) comes, after our FIN. */
    let endAfterOurFin: ChatEnd | undefined;
    let lingerTimer: NodeJS.Timeout | undefined;

    const finish = (end: ChatEnd) => {
      if (ended) return;
      ended = true;
      clearTimeout(lingerTimer);
      signal?.removeEventListener('abort', onAbort);
      output.off('error', onOutputError);
      typed.close();
      resolve(end);
    };

    // Our FIN: the peer may still send; its FIN (or the linger bound) ends the chat.
    const halfClose = (reason: string, then?: ChatEnd) => {
      if (halfClosed || ended) return;
      halfClosed = true;
      endAfterOurFin = then;
      typed.close();
      status(`${reason}; sent FIN, waiting up to ${lingerMs} ms for the peer to close`);
      socket.end();
      lingerTimer = setTimeout(() => {
        status('peer did not close in time; closing');
        socket.destroy();
        finish(endAfterOurFin ?? { kind: 'quit', peerClosed: false });
      }, lingerMs);
    };

    const interrupt = (signalName: string) => {
      if (ended) return;
      status(`interrupted (${signalName}): closing the connection`);
      socket.end();
      // Give the FIN a moment to leave, but never hang on Ctrl-C.
      setTimeout(() => socket.destroy(), 500).unref();
      finish({ kind: 'interrupted', signal: signalName });
    };
    const onAbort = () => interrupt(typeof signal?.reason === 'string' ? signal.reason : 'aborted');

    const typedHandlers: TypedHandlers = {
      line: (line) => {
        if (halfClosed || ended) return;
        if (line === QUIT_COMMAND) return halfClose('quit');
        if (!socket.write(`${line}\n`) && !waitingForSocketDrain) {
          // The peer reads slower than we are fed (a big file on stdin): wait for it.
          waitingForSocketDrain = true;
          typed.pause();
          socket.once('drain', () => {
            waitingForSocketDrain = false;
            typed.resume();
          });
        }
      },
      tooLong: () =>
        halfClose(`a typed line is longer than --max-line ${maxLineBytes} bytes: not sent`, {
          kind: 'line-too-long',
          side: 'typed',
        }),
      end: () => halfClose('end of input'),
      interrupt,
    };
    const typed = options.terminal
      ? readTerminalLines(input, options.terminal, options.terminal === output, maxLineBytes, typedHandlers)
      : readPipedLines(input, maxLineBytes, typedHandlers);

    const show = (line: string) => {
      // Once our output is gone, what the peer still sends until its FIN is read and dropped.
      if (!outputOpen) return;
      typed.beforeOutput();
      const flowing = output.write(`${prefix}${line}\n`);
      typed.afterOutput();
      if (!flowing) {
        // Our reader is slower than the peer: stop reading the socket (TCP slows the peer down).
        socket.pause();
        output.once('drain', () => socket.resume());
      }
    };

    // A closed stdout (EPIPE: `peer.ts | head -1`) ends the chat like /quit, without a stack trace.
    const onOutputError = (error: NodeJS.ErrnoException) => {
      if (!outputOpen) return;
      outputOpen = false;
      socket.resume();
      const code = error.code ?? 'error';
      halfClose(`stdout closed (${code})`, { kind: 'output-closed', code });
    };
    output.on('error', onOutputError);

    const received = new LineSplitter(maxLineBytes);
    socket.on('data', (chunk: Buffer) => {
      if (ended) return;
      let lines: string[];
      try {
        lines = received.push(chunk);
      } catch (error) {
        if (!(error instanceof LineTooLongError)) throw error;
        // The whole lines before the long one are shown: nothing the peer sent whole is lost.
        for (const line of error.before) show(line);
        status(`the peer sent a line longer than --max-line ${maxLineBytes} bytes; dropping the connection`);
        socket.resetAndDestroy();
        finish({ kind: 'line-too-long', side: 'received' });
        return;
      }
      for (const line of lines) show(line);
    });
    socket.on('end', () => {
      if (ended) return;
      const rest = received.rest();
      if (rest) show(rest);
      status('peer closed the connection');
      if (halfClosed) {
        finish(endAfterOurFin ?? { kind: 'quit', peerClosed: true });
        return;
      }
      // Answer with our FIN once what we wrote has gone.
      socket.end(() => finish({ kind: 'peer-closed' }));
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      if (ended) return;
      const code = error.code ?? 'UNKNOWN';
      status(code === 'ECONNRESET' ? 'connection reset by peer' : `connection lost: ${error.message}`);
      finish({ kind: 'lost', code, message: error.message });
    });

    signal?.addEventListener('abort', onAbort, { once: true });
    if (signal?.aborted) onAbort();
  });
}
