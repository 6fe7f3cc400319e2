import { describe, expect, it } from 'vitest';
import { criticalPath, describeChain, type Span } from '../../bench/critical-path.ts';

const span = (label: string, start: number, end: number): Span => ({ label, start, end });
const lengthOf = (...spans: Span[]) => criticalPath(spans).length;

describe('criticalPath', () => {
  it('is 0 without spans and 1 for one span', () => {
    expect(lengthOf()).toBe(0);
    expect(lengthOf(span('a', 0, 5))).toBe(1);
  });

  it('counts requests that follow one another', () => {
    expect(lengthOf(span('a', 0, 1), span('b', 2, 3), span('c', 4, 5))).toBe(3);
  });

  it('counts overlapping requests as one step', () => {
    expect(lengthOf(span('a', 0, 10), span('b', 1, 11), span('c', 9, 12))).toBe(1);
  });

  it('counts a request that starts the instant the previous one ends as following it', () => {
    expect(lengthOf(span('a', 0, 5), span('b', 5, 8))).toBe(2);
    expect(lengthOf(span('a', 0, 5), span('b', 4.999, 8))).toBe(1);
  });

  it('counts a file GET and the PutObject it streams into, which starts before the GET ends, as one step', () => {
    const spans = [
      span('DynamoDB PutItem', 0, 2),
      span('jumdata POST /invoice/download', 2.5, 5),
      ...['pdf', 'ofd', 'xml'].flatMap((kind, i) => [
        span(`file GET …/${kind}.bin`, 5.2 + i * 0.1, 30 + i),
        span(`S3 PUT …/${kind}`, 6 + i * 0.1, 31 + i),
      ]),
      // The kept answer, sent beside the files: invoice.json waits for it too, so it is on the path.
      span('DynamoDB UpdateItem', 5.1, 7),
      // Sent during the claim, answered during the files: on no longest chain.
      span('S3 GET …/other.json', 1, 20),
      span('S3 PUT …/invoice.json', 33.5, 35),
      span('DynamoDB PutItem', 33.6, 34),
    ];
    const path = criticalPath(spans);
    expect(path.length).toBe(4);
    expect(path.steps.map((step) => step.length)).toEqual([1, 1, 7, 2]);
    expect(describeChain(path)).toBe(
      'DynamoDB PutItem → jumdata POST /invoice/download → DynamoDB UpdateItem + file GET ×3 (pdf.bin, ofd.bin, xml.bin) + S3 PUT ×3 (pdf, ofd, xml) → S3 PUT …/invoice.json + DynamoDB PutItem  [off the path: S3 GET …/other.json]',
    );
  });

  it('takes the longest chain, not the first one found', () => {
    // a → d is a chain of 2; b → c → d and b → c → e are chains of 3; a overlaps b, c and e.
    const spans = [span('a', 0, 10), span('b', 0, 1), span('c', 2, 3), span('d', 11, 12), span('e', 4, 20)];
    const path = criticalPath(spans);
    expect(path.length).toBe(3);
    expect(path.steps.map((step) => step.map((unit) => unit.spans[0]!.label).sort())).toEqual([['b'], ['c'], ['d', 'e']]);
    expect(path.offPath.map((unit) => unit.spans[0]!.label)).toEqual(['a']);
  });

  describe('a request whose body streams from another one\'s answer', () => {
    // Three files after the billed call: the pdf is small and its GET is over before the xml's PutObject is sent.
    const transfers = (streamed: boolean) => [
      span('jumdata POST /invoice/download', 0, 2),
      { id: 1, ...span('file GET …/pdf.bin', 3, 10) },
      { id: 2, ...span('S3 PUT …/pdf.pdf', 5, 12), streamedFrom: streamed ? 1 : undefined },
      { id: 3, ...span('file GET …/xml.bin', 3.1, 30) },
      { id: 4, ...span('S3 PUT …/xml.zip', 11, 31), streamedFrom: streamed ? 3 : undefined },
      span('S3 PUT …/invoice.json', 32, 33),
    ];

    it('is one transfer with it, so that independent transfers never chain', () => {
      expect(criticalPath(transfers(false)).length).toBe(4); // jumdata → pdf GET → xml PUT → invoice.json
      const path = criticalPath(transfers(true));
      expect(path.length).toBe(3);
      expect(path.steps[1]!.map((unit) => [unit.start, unit.end])).toEqual([
        [3, 12],
        [3.1, 31],
      ]);
      expect(describeChain(path)).toBe(
        'jumdata POST /invoice/download → file GET ⇒ S3 PUT ×2 (pdf.bin ⇒ pdf.pdf, xml.bin ⇒ xml.zip) → S3 PUT …/invoice.json',
      );
    });

    it('is shown with it when alone', () => {
      const path = criticalPath(transfers(true).filter((s) => s.id !== 3 && s.id !== 4));
      expect(describeChain(path)).toBe('jumdata POST /invoice/download → file GET …/pdf.bin ⇒ S3 PUT …/pdf.pdf → S3 PUT …/invoice.json');
    });
  });

  it('does not depend on the order the spans come in', () => {
    const spans = [span('c', 4, 5), span('a', 0, 1), span('b', 2, 3), span('x', 0.5, 4.5)];
    expect(lengthOf(...spans)).toBe(3);
    expect(lengthOf(...spans.toReversed())).toBe(3);
  });

  it('chains two instantaneous spans at the same instant once, not endlessly', () => {
    expect(lengthOf(span('a', 1, 1), span('b', 1, 1))).toBe(2);
    expect(lengthOf(span('a', 1, 1), span('b', 1, 1), span('c', 0, 1), span('d', 1, 2))).toBe(4);
  });

  it('refuses a span that ends before it starts', () => {
    expect(() => criticalPath([span('a', 2, 1)])).toThrow(RangeError);
  });
});
