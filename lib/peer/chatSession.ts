import readline from 'node:readline';
import type { ChatEnd, ChatOptions } from './types.ts';

export const QUIT_COMMAND = '/quit';

export function runChat(options: ChatOptions): Promise<ChatEnd> {
  const { socket, input, output, status, prefix, lingerMs, signal } = options;
  socket.setNoDelay(true);
  return new Promise<ChatEnd>((resolve) => {
    let ended = false;
    let halfClosed = false;
    let lingerTimer: NodeJS.Timeout | undefined;
    const typed = readline.createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY, terminal: false });
    const received = readline.createInterface({ input: socket, crlfDelay: Number.POSITIVE_INFINITY });

    const finish = (end: ChatEnd) => {
      if (ended) return;
      ended = true;
      clearTimeout(lingerTimer);
      signal?.removeEventListener('abort', onAbort);
      typed.close();
      received.close();
      resolve(end);
    };

    // Our FIN: the peer may still send; its FIN (or the linger bound) ends the chat.
    const halfClose = (reason: string) => {
      if (halfClosed) return;
      halfClosed = true;
      typed.close();
      status(`${reason}; sent FIN, waiting up to ${lingerMs} ms for the peer to close`);
      socket.end();
      lingerTimer = setTimeout(() => {
        status('peer did not close in time; closing');
        socket.destroy();
        finish({ kind: 'quit', peerClosed: false });
      }, lingerMs);
    };

    const onAbort = () => {
      socket.end();
      // Give the FIN a moment to leave, but never hang on Ctrl-C.
      setTimeout(() => socket.destroy(), 500).unref();
      finish({ kind: 'interrupted' });
    };
    signal?.addEventListener('abort', onAbort, { once: true });

    typed.on('line', (line) => {
      if (halfClosed) return;
      if (line === QUIT_COMMAND) halfClose('quit');
      else socket.write(`${line}\n`);
    });
    typed.on('close', () => {
      if (!ended) halfClose('end of input');
    });

    received.on('line', (line) => output.write(`${prefix}${line}\n`));
    // readline repeats the socket's errors; they are handled once, on the socket, below.
    received.on('error', () => {});
    socket.on('end', () => {
      if (halfClosed) {
        status('peer closed the connection');
        finish({ kind: 'quit', peerClosed: true });
        return;
      }
      status('peer closed the connection');
      // Answer with our FIN once what we wrote has gone.
      socket.end(() => finish({ kind: 'peer-closed' }));
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      const code = error.code ?? 'UNKNOWN';
      status(code === 'ECONNRESET' ? 'connection reset by peer' : `connection lost: ${error.message}`);
      finish({ kind: 'lost', code, message: error.message });
    });
  });
}
