/**
 * The critical path of an invocation's requests: the longest chain u1, u2, ... of requests in which each one starts
 * after the previous one ended (u(i+1).start >= u(i).end). Requests that overlap (two reads sent together, the three
 * file transfers) can never be in one chain, so they count as one step; a request sent only once another one was
 * answered adds a step. The bench counts these steps, which no machine's speed changes.
 *
 * A request whose body streams from another one's answer (a PutObject fed by a file GET) is one transfer with it:
 * one unit, from the first one's start to the last one's end. Without that, two independent transfers could look
 * like a chain: a small file's GET may be over before a sibling file's PutObject is sent.
 */

export interface Span {
  /** Unique within one call; needed only to name it in `streamedFrom`. */
  id?: number;
  /** What the request was, `{service} {method} {resource}` or `{service} {operation}`: `S3 PUT …/invoice.json`. */
  label: string;
  /** When the request was sent (ms, one clock for all spans). */
  start: number;
  /** When its answer had fully arrived, or it failed. */
  end: number;
  /** The span whose answer's body is this request's body (piped, possibly through transforms). */
  streamedFrom?: number;
}

/** A request, or requests streamed one into the other: one link of a chain. */
export interface Unit {
  spans: Span[];
  start: number;
  end: number;
}

export interface CriticalPath {
  /** The number of units in the longest chain; 0 without spans. */
  length: number;
  /**
   * Every unit that lies on some longest chain, by its place in the chain: `steps[k]` holds the units that can be
   * the chain's (k+1)-th. The units of one step overlap one another (or one could follow the other).
   */
  steps: Unit[][];
  /** The units on no longest chain. */
  offPath: Unit[];
}

export function criticalPath(spans: readonly Span[]): CriticalPath {
  for (const span of spans) {
    if (!(span.end >= span.start)) throw new RangeError(`span "${span.label}" ends (${span.end}) before it starts (${span.start})`);
  }
  // By start, then end: a unit that can precede another always comes first. (Two units of no length at the same
  // instant could precede each other; this order picks one way, as a chain uses each unit once.)
  const units = unitsOf(spans).sort((a, b) => a.start - b.start || a.end - b.end);
  const n = units.length;
  // depth: the longest chain that ends with the unit; height: the longest that starts with it.
  const depth = new Array<number>(n).fill(1);
  const height = new Array<number>(n).fill(1);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < i; j++) {
      if (units[j]!.end <= units[i]!.start) depth[i] = Math.max(depth[i]!, depth[j]! + 1);
    }
  }
  for (let i = n - 1; i >= 0; i--) {
    for (let j = i + 1; j < n; j++) {
      if (units[i]!.end <= units[j]!.start) height[i] = Math.max(height[i]!, height[j]! + 1);
    }
  }
  const length = Math.max(0, ...depth);
  const steps = Array.from({ length }, () => [] as Unit[]);
  const offPath: Unit[] = [];
  units.forEach((unit, i) => {
    if (depth[i]! + height[i]! - 1 === length) steps[depth[i]! - 1]!.push(unit);
    else offPath.push(unit);
  });
  return { length, steps, offPath };
}

/** Spans joined by `streamedFrom` into units, in the order of their first span. */
function unitsOf(spans: readonly Span[]): Unit[] {
  const byId = new Map(spans.flatMap((span) => (span.id === undefined ? [] : [[span.id, span] as const])));
  const rootOf = (span: Span): Span => {
    const seen = new Set<Span>();
    let current = span;
    while (current.streamedFrom !== undefined && byId.has(current.streamedFrom) && !seen.has(current)) {
      seen.add(current);
      current = byId.get(current.streamedFrom)!;
    }
    return current;
  };
  const units = new Map<Span, Span[]>();
  for (const span of spans) {
    const root = rootOf(span);
    units.set(root, [...(units.get(root) ?? []), span]);
  }
  return [...units.values()].map((members) => {
    const ordered = members.toSorted((a, b) => a.start - b.start);
    return { spans: ordered, start: ordered[0]!.start, end: Math.max(...ordered.map((span) => span.end)) };
  });
}

/**
 * One line: the steps in order, joined by →; the units of a step joined by +, those alike but for what they moved
 * counted (`S3 PUT ×3 (pdf.pdf, ofd.zip, xml.zip)`); the spans of one unit joined by ⇒.
 */
export function describeChain(path: CriticalPath): string {
  const chain = path.steps.map(describeStep).join(' → ');
  return path.offPath.length > 0 ? `${chain}  [off the path: ${describeStep(path.offPath)}]` : chain;
}

function describeStep(units: readonly Unit[]): string {
  const groups = new Map<string, Unit[]>();
  for (const unit of units) {
    const kind = unit.spans.map((span) => splitLabel(span.label)[0]).join(' ⇒ ');
    groups.set(kind, [...(groups.get(kind) ?? []), unit]);
  }
  return [...groups]
    .map(([kind, alike]) => {
      if (alike.length === 1) return alike[0]!.spans.map((span) => span.label).join(' ⇒ ');
      const moved = alike.map((unit) => unit.spans.map((span) => splitLabel(span.label)[1].replace(/^…\//, '')).join(' ⇒ '));
      return `${kind} ×${alike.length}${moved.some(Boolean) ? ` (${moved.join(', ')})` : ''}`;
    })
    .join(' + ');
}

/** `S3 PUT …/pdf.pdf` → [`S3 PUT`, `…/pdf.pdf`]; a label of one or two words has no resource. */
function splitLabel(label: string): [string, string] {
  const words = label.split(' ');
  return words.length <= 2 ? [label, ''] : [words.slice(0, 2).join(' '), words.slice(2).join(' ')];
}
