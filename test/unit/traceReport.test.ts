import { describe, expect, it } from 'vitest';
import { renderPage } from '../../lib/report/html.ts';
import { DETAILED_CONNECTIONS, DETAILED_OTHERS, TraceReportCollector } from '../../lib/report/traceReport.ts';
import type { ConnectionPath, OpenKind, TcpState, TracedItem } from '../../lib/trace/types.ts';

function path(states: TcpState[], port: number): ConnectionPath {
  return {
    source: 'kernel',
    family: 4,
    local: { host: '127.0.0.1', port },
    remote: { host: '127.0.0.1', port: port + 1 },
    states,
    steps: states.map((state, index) => ({ state, timestampUs: index * 10, offsetUs: index * 10 })),
    startUs: 0,
    endUs: states.length * 10,
    resetReceived: false,
  };
}

const CROSSED: TcpState[] = ['CLOSED', 'SYN_SENT', 'SYN_RECEIVED', 'ESTABLISHED'];
const DIRECT: TcpState[] = ['CLOSED', 'SYN_SENT', 'ESTABLISHED'];

function connection(open: OpenKind, port: number): TracedItem {
  const sides = open === 'crossed' ? [CROSSED, CROSSED] : [CROSSED, DIRECT];
  return {
    kind: 'connection',
    pair: {
      sides: [path(sides[0] as TcpState[], port), path(sides[1] as TcpState[], port + 1)],
      open,
      close: ['active', 'passive'],
    },
  };
}

describe('trace.ts --report collector', () => {
  it('keeps the first connections, an example of each way of opening, a few others; counts every path', () => {
    const collector = new TraceReportCollector();
    for (let index = 0; index < 10; index += 1)
      collector.item({ kind: 'failed-attempt', path: path(['CLOSED', 'SYN_SENT', 'CLOSED'], 1000 + index) });
    for (let index = 0; index < 100; index += 1) collector.item(connection('one-sided', 2000 + 2 * index));
    collector.item(connection('crossed', 5000));
    collector.item(connection('crossed', 5002));
    const counted = collector.tally.result();
    expect(counted.sides).toBe(10 + 2 * 102);
    expect(counted.edges.find((edge) => edge.from === 'SYN_SENT' && edge.to === 'SYN_RECEIVED')?.sides).toBe(
      100 + 2 * 2,
    );
    const html = renderPage(collector.page());
    const listed = [
      ...html.matchAll(/<tr class="pick" data-paths="[^"]*"><td class="num">([\d,]+)<\/td><td>([^<]*)/g),
    ].map((match) => [Number((match[1] ?? '').replaceAll(',', '')), match[2]]);
    // In the connections table (the paths table's rows have no number cell).
    expect(listed).toHaveLength(DETAILED_CONNECTIONS + DETAILED_OTHERS);
    expect(listed.slice(0, DETAILED_OTHERS).map(([seq]) => seq)).toEqual([1, 2, 3, 4]);
    expect(listed.filter(([, what]) => what === 'crossed').map(([seq]) => seq)).toEqual([111]);
    expect(listed.filter(([, what]) => what === 'one-sided')).toHaveLength(DETAILED_CONNECTIONS - 1);
  });
});
