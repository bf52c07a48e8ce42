/**
 * The TCP state diagram as RFC 9293 (and RFC 793 before it) draws it: the 11 states laid out once,
 * CLOSED at the top and again at the bottom right, each transition of the classic diagram with its
 * event. Edges that sides took are drawn by how many took them (width and number); the diagram's
 * other edges stay grey; a transition the classic diagram does not draw (a reset, an abort) gets a
 * curve of its own. Pure: an SVG string.
 */
import { edgeKey } from '../trace/stateEdges.ts';
import type { EdgeCount, TcpState } from '../trace/types.ts';
import { escapeHtml } from './html.ts';

type Point = [number, number];
/** A cubic Bézier: start, two control points, end. */
type Curve = [Point, Point, Point, Point];
type Box = 'CLOSED_END' | TcpState;

export const DIAGRAM_WIDTH = 820;
export const DIAGRAM_HEIGHT = 800;
const HALF_W = 75;
const HALF_H = 23;

/** Centre of each box. CLOSED_END is the second CLOSED, where closes end. */
const BOXES: Record<Box, Point> = {
  CLOSED: [410, 50],
  LISTEN: [410, 160],
  SYN_RECEIVED: [120, 290],
  SYN_SENT: [700, 290],
  ESTABLISHED: [410, 410],
  FIN_WAIT_1: [120, 530],
  CLOSE_WAIT: [700, 530],
  FIN_WAIT_2: [120, 650],
  CLOSING: [410, 650],
  LAST_ACK: [700, 650],
  TIME_WAIT: [410, 760],
  CLOSED_END: [700, 760],
};

/** Open, close, or neither (an abort, a reset, a failed connect). */
export type EdgeCategory = 'open' | 'close' | 'abort';

interface EdgeLayout {
  from: TcpState;
  to: TcpState;
  curve: Curve;
  /** The event of the classic diagram (what is received / sent). */
  event?: string;
  /** Where the count goes, and which way its text runs from there. */
  label: Point;
  /** Where the event goes when the edge is taken (default: under the count). */
  eventAt?: Point;
  anchor?: 'start' | 'middle' | 'end';
  category: EdgeCategory;
}

function line(a: Point, b: Point): Curve {
  return [
    a,
    [a[0] + (b[0] - a[0]) / 3, a[1] + (b[1] - a[1]) / 3],
    [a[0] + (2 * (b[0] - a[0])) / 3, a[1] + (2 * (b[1] - a[1])) / 3],
    b,
  ];
}

/** The transitions of the classic diagram, plus the abort from ESTABLISHED that Linux reports often. */
const LAYOUT: EdgeLayout[] = [
  {
    from: 'CLOSED',
    to: 'LISTEN',
    curve: line([393, 73], [393, 137]),
    event: 'passive open',
    label: [386, 110],
    anchor: 'end',
    category: 'open',
  },
  {
    from: 'LISTEN',
    to: 'CLOSED',
    curve: line([427, 137], [427, 73]),
    event: 'close',
    label: [434, 110],
    anchor: 'start',
    category: 'abort',
  },
  {
    from: 'CLOSED',
    to: 'SYN_SENT',
    curve: [
      [485, 46],
      [640, 46],
      [712, 120],
      [712, 267],
    ],
    event: 'connect / snd SYN',
    label: [690, 100],
    anchor: 'start',
    category: 'open',
  },
  {
    from: 'SYN_SENT',
    to: 'CLOSED',
    curve: [
      [672, 267],
      [672, 170],
      [590, 82],
      [485, 64],
    ],
    event: 'close, RST, timeout',
    label: [652, 196],
    anchor: 'end',
    category: 'abort',
  },
  {
    from: 'LISTEN',
    to: 'SYN_RECEIVED',
    curve: [
      [380, 183],
      [360, 250],
      [260, 276],
      [195, 281],
    ],
    event: 'rcv SYN / snd SYN,ACK',
    label: [280, 232],
    anchor: 'end',
    category: 'open',
  },
  {
    from: 'LISTEN',
    to: 'SYN_SENT',
    curve: [
      [440, 183],
      [460, 250],
      [560, 276],
      [625, 281],
    ],
    event: 'send / snd SYN',
    label: [540, 232],
    anchor: 'start',
    category: 'open',
  },
  {
    from: 'SYN_SENT',
    to: 'SYN_RECEIVED',
    curve: line([625, 299], [195, 299]),
    event: 'rcv SYN / snd SYN,ACK (SYNs cross)',
    label: [410, 289],
    eventAt: [410, 320],
    category: 'open',
  },
  {
    from: 'SYN_RECEIVED',
    to: 'ESTABLISHED',
    curve: [
      [195, 306],
      [300, 318],
      [370, 345],
      [384, 387],
    ],
    event: 'rcv ACK of SYN',
    label: [250, 350],
    anchor: 'middle',
    category: 'open',
  },
  {
    from: 'SYN_SENT',
    to: 'ESTABLISHED',
    curve: [
      [625, 306],
      [520, 318],
      [450, 345],
      [436, 387],
    ],
    event: 'rcv SYN,ACK / snd ACK',
    label: [570, 350],
    anchor: 'middle',
    category: 'open',
  },
  {
    from: 'SYN_RECEIVED',
    to: 'FIN_WAIT_1',
    curve: line([80, 313], [80, 507]),
    event: 'close / snd FIN',
    label: [88, 420],
    anchor: 'start',
    category: 'close',
  },
  {
    from: 'ESTABLISHED',
    to: 'FIN_WAIT_1',
    curve: [
      [380, 433],
      [360, 490],
      [260, 516],
      [195, 521],
    ],
    event: 'close / snd FIN',
    label: [280, 472],
    anchor: 'end',
    category: 'close',
  },
  {
    from: 'ESTABLISHED',
    to: 'CLOSE_WAIT',
    curve: [
      [440, 433],
      [460, 490],
      [560, 516],
      [625, 521],
    ],
    event: 'rcv FIN / snd ACK',
    label: [540, 472],
    anchor: 'start',
    category: 'close',
  },
  {
    from: 'FIN_WAIT_1',
    to: 'FIN_WAIT_2',
    curve: line([90, 553], [90, 627]),
    event: 'rcv ACK of FIN',
    label: [82, 592],
    anchor: 'end',
    category: 'close',
  },
  {
    from: 'FIN_WAIT_1',
    to: 'CLOSING',
    curve: [
      [195, 540],
      [300, 548],
      [380, 580],
      [396, 627],
    ],
    event: 'rcv FIN / snd ACK (FINs cross)',
    label: [300, 582],
    anchor: 'middle',
    category: 'close',
  },
  {
    from: 'CLOSE_WAIT',
    to: 'LAST_ACK',
    curve: line([700, 553], [700, 627]),
    event: 'close / snd FIN',
    label: [708, 592],
    anchor: 'start',
    category: 'close',
  },
  {
    from: 'FIN_WAIT_2',
    to: 'TIME_WAIT',
    curve: [
      [120, 673],
      [120, 742],
      [210, 760],
      [335, 760],
    ],
    event: 'rcv FIN / snd ACK',
    label: [236, 734],
    anchor: 'start',
    category: 'close',
  },
  {
    from: 'CLOSING',
    to: 'TIME_WAIT',
    curve: line([410, 673], [410, 737]),
    event: 'rcv ACK of FIN',
    label: [418, 706],
    anchor: 'start',
    category: 'close',
  },
  {
    from: 'LAST_ACK',
    to: 'CLOSED',
    curve: line([700, 673], [700, 737]),
    event: 'rcv ACK of FIN',
    label: [708, 706],
    anchor: 'start',
    category: 'close',
  },
  {
    from: 'TIME_WAIT',
    to: 'CLOSED',
    curve: line([485, 760], [625, 760]),
    event: 'timeout 2MSL',
    label: [555, 752],
    category: 'close',
  },
  {
    from: 'ESTABLISHED',
    to: 'CLOSED',
    curve: [
      [485, 420],
      [560, 440],
      [565, 700],
      [628, 746],
    ],
    event: 'RST, abort',
    label: [566, 610],
    anchor: 'middle',
    category: 'abort',
  },
];

const BY_KEY = new Map(LAYOUT.map((edge) => [edgeKey(edge.from, edge.to), edge]));

/** The boxes an edge joins: closes end in the bottom CLOSED, the early states return to the top one. */
function boxesOf(from: TcpState, to: TcpState): [Box, Box] {
  const early = from === 'LISTEN' || from === 'SYN_SENT' || from === 'SYN_RECEIVED' || from === 'CLOSED';
  return [from, to === 'CLOSED' && !early ? 'CLOSED_END' : to];
}

/** Where the line from a box's centre towards `toward` leaves the box. */
function boxBorder(center: Point, toward: Point): Point {
  const dx = toward[0] - center[0];
  const dy = toward[1] - center[1];
  const scale = Math.min(
    dx === 0 ? Infinity : HALF_W / Math.abs(dx),
    dy === 0 ? Infinity : HALF_H / Math.abs(dy),
  );
  return [center[0] + dx * scale, center[1] + dy * scale];
}

/** A transition the classic diagram does not draw: a curve bowed to one side, so it does not hide a straight one. */
function extraLayout(from: TcpState, to: TcpState): EdgeLayout {
  const [fromBox, toBox] = boxesOf(from, to);
  const a = BOXES[fromBox];
  const b = BOXES[toBox];
  const start = boxBorder(a, b);
  const end = boxBorder(b, a);
  const dx = end[0] - start[0];
  const dy = end[1] - start[1];
  const length = Math.hypot(dx, dy) || 1;
  const bow = 46;
  const nx = (-dy / length) * bow;
  const ny = (dx / length) * bow;
  const curve: Curve = [
    start,
    [start[0] + dx / 3 + nx, start[1] + dy / 3 + ny],
    [start[0] + (2 * dx) / 3 + nx, start[1] + (2 * dy) / 3 + ny],
    end,
  ];
  const middle = pointAt(curve, 0.5);
  return {
    from,
    to,
    curve,
    label: [middle[0], middle[1] - 6],
    category: to === 'CLOSED' ? 'abort' : 'close',
  };
}

function pointAt(curve: Curve, t: number): Point {
  const u = 1 - t;
  const [p0, p1, p2, p3] = curve;
  const c = [u * u * u, 3 * u * u * t, 3 * u * t * t, t * t * t] as const;
  return [
    c[0] * p0[0] + c[1] * p1[0] + c[2] * p2[0] + c[3] * p3[0],
    c[0] * p0[1] + c[1] * p1[1] + c[2] * p2[1] + c[3] * p3[1],
  ];
}

/** The layout of a transition: the classic diagram's, or one made for it. */
export function layoutOf(from: TcpState, to: TcpState): EdgeLayout {
  return BY_KEY.get(edgeKey(from, to)) ?? extraLayout(from, to);
}

/** The transitions the classic diagram draws (grey when no side took them). */
export const CLASSIC_EDGES: readonly [TcpState, TcpState][] = LAYOUT.filter(
  (edge) => edge.category !== 'abort' || edge.from !== 'ESTABLISHED',
).map((edge) => [edge.from, edge.to]);

export const CATEGORY_COLORS: Record<EdgeCategory, string> = {
  open: '#2563eb',
  close: '#0d9488',
  abort: '#dc2626',
};
const IDLE_COLOR = '#cbd5e1';

function fmt(value: number): string {
  return String(Math.round(value * 10) / 10);
}

function pathData(curve: Curve): string {
  const [p0, p1, p2, p3] = curve;
  return `M${fmt(p0[0])},${fmt(p0[1])} C${fmt(p1[0])},${fmt(p1[1])} ${fmt(p2[0])},${fmt(p2[1])} ${fmt(p3[0])},${fmt(p3[1])}`;
}

export interface DiagramOptions {
  /** The element id of the <svg>. */
  id?: string;
  /** What a count counts ("sides"), for the tooltips. */
  unit?: string;
}

/**
 * The diagram with these edge counts. Each edge is a <g class="edge" data-edge="FROM>TO"
 * data-sides="N"> (N = 0 for the classic diagram's edges nobody took), each state a <g class="node"
 * data-state="NAME">.
 */
export function renderStateDiagram(edges: readonly EdgeCount[], options: DiagramOptions = {}): string {
  const unit = options.unit ?? 'sides';
  const counts = new Map(
    edges.filter((edge) => edge.from !== edge.to).map((edge) => [edgeKey(edge.from, edge.to), edge]),
  );
  const max = Math.max(1, ...Array.from(counts.values(), (edge) => edge.sides));
  const drawn: { layout: EdgeLayout; sides: number }[] = [];
  for (const [from, to] of CLASSIC_EDGES)
    drawn.push({ layout: layoutOf(from, to), sides: counts.get(edgeKey(from, to))?.sides ?? 0 });
  for (const edge of counts.values())
    if (!CLASSIC_EDGES.some(([from, to]) => from === edge.from && to === edge.to))
      drawn.push({ layout: layoutOf(edge.from, edge.to), sides: edge.sides });
  // Grey ones first, then the taken ones by count: the thick lines on top.
  drawn.sort((x, y) => x.sides - y.sides);
  const seen = new Set<Box>();
  for (const { layout, sides } of drawn) {
    if (sides === 0) continue;
    const [fromBox, toBox] = boxesOf(layout.from, layout.to);
    seen.add(fromBox);
    seen.add(toBox);
  }

  const markers = [...Object.entries(CATEGORY_COLORS), ['idle', IDLE_COLOR]]
    .map(
      ([name, color]) =>
        `<marker id="arrow-${name}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="9" markerHeight="9" markerUnits="userSpaceOnUse" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="${color}"/></marker>`,
    )
    .join('');
  const edgeSvg = drawn
    .map(({ layout, sides }) => {
      const key = edgeKey(layout.from, layout.to);
      const taken = sides > 0;
      const color = taken ? CATEGORY_COLORS[layout.category] : IDLE_COLOR;
      const width = taken ? 1.8 + 7 * Math.sqrt(sides / max) : 1.3;
      const marker = taken ? layout.category : 'idle';
      const title = `${layout.from} → ${layout.to}${layout.event ? ` (${layout.event})` : ''}: ${sides.toLocaleString('en-US')} ${unit}`;
      const anchor = layout.anchor ?? 'middle';
      const [lx, ly] = layout.label;
      const event =
        layout.event && !taken
          ? `<text class="event" x="${fmt(lx)}" y="${fmt(ly)}" text-anchor="${anchor}">${escapeHtml(layout.event)}</text>`
          : layout.event
            ? `<text class="event" x="${fmt(layout.eventAt?.[0] ?? lx)}" y="${fmt(layout.eventAt?.[1] ?? ly + 14)}" text-anchor="${anchor}">${escapeHtml(layout.event)}</text>`
            : '';
      const count = taken
        ? `<text class="count" x="${fmt(lx)}" y="${fmt(ly)}" text-anchor="${anchor}" fill="${color}">${sides.toLocaleString('en-US')}</text>`
        : '';
      return `<g class="edge ${taken ? `taken ${layout.category}` : 'idle'}" data-edge="${escapeHtml(key)}" data-sides="${sides}"><title>${escapeHtml(title)}</title><path d="${pathData(layout.curve)}" stroke="${color}" stroke-width="${fmt(width)}" stroke-linecap="round" marker-end="url(#arrow-${marker})"/>${event}${count}</g>`;
    })
    .join('\n');
  const nodeSvg = (Object.entries(BOXES) as [Box, Point][])
    .map(([box, [x, y]]) => {
      const state = box === 'CLOSED_END' ? 'CLOSED' : box;
      return `<g class="node${seen.has(box) ? ' seen' : ''}" data-state="${state}"><rect x="${x - HALF_W}" y="${y - HALF_H}" width="${2 * HALF_W}" height="${2 * HALF_H}" rx="8"/><text x="${x}" y="${y}">${state}</text></g>`;
    })
    .join('\n');
  const id = options.id ? ` id="${escapeHtml(options.id)}"` : '';
  return `<svg${id} xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${DIAGRAM_WIDTH} ${DIAGRAM_HEIGHT}" role="img" aria-label="TCP state diagram"><defs>${markers}</defs>\n${edgeSvg}\n${nodeSvg}\n</svg>`;
}
