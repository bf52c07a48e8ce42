import { describe, expect, it } from 'vitest';
import { createLivePrinter } from '../../lib/trace/connectionLiveTrace.ts';
import type { TraceEvent } from '../../lib/trace/types.ts';
import { fixture, parseText } from '../helpers/traceFixtures.ts';

describe('live printing (peer.ts --trace) of recorded events', () => {
  it('prints our side as it goes, counts failed connect attempts instead of printing them', () => {
    const lines: string[] = [];
    const events = parseText(fixture('simultaneous-open-then-close.trace.txt'));
    const refused: TraceEvent[] = [1, 2].flatMap((n) => [
      {
        ...(events[0] as TraceEvent),
        timestampUs: 677_000_000 + n,
        type: 'state',
        from: 'CLOSED',
        to: 'SYN_SENT',
      },
      {
        ...(events[0] as TraceEvent),
        timestampUs: 677_000_010 + n,
        type: 'state',
        from: 'SYN_SENT',
        to: 'CLOSED',
      },
    ]) as TraceEvent[];
    const print = createLivePrinter(
      (line) => lines.push(line),
      677_000_000,
      (side) => side.local.port === 31000,
    );
    for (const event of [...refused, ...events.slice(0, 12)]) print(event);
    expect(lines).toEqual([
      'trace: (2 earlier connect attempts went CLOSED → SYN_SENT → CLOSED)',
      'trace: +720167µs 127.0.0.1:31000 > 127.0.0.1:31001  CLOSED → SYN_SENT',
      'trace: +1732086µs 127.0.0.1:31000 > 127.0.0.1:31001  SYN_SENT → SYN_RECEIVED',
      'trace: +1732115µs 127.0.0.1:31000 > 127.0.0.1:31001  SYN_RECEIVED → ESTABLISHED',
      'trace: +1733394µs 127.0.0.1:31000 > 127.0.0.1:31001  ESTABLISHED → FIN_WAIT_1',
      'trace: +1734104µs 127.0.0.1:31000 > 127.0.0.1:31001  FIN_WAIT_1 → FIN_WAIT_2',
      'trace: +1734111µs 127.0.0.1:31000 > 127.0.0.1:31001  FIN_WAIT_2 → TIME_WAIT* (inferred: handed to a TIME_WAIT mini-socket)',
    ]);
  });
});
