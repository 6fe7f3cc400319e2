/**
 * Reading the embedded metric format (EMF) documents a function wrote to stdout, as CloudWatch Logs would: each
 * metric of each document, with its namespace, unit, dimensions (the document's dimension set) and value(s).
 */

export interface PublishedMetric {
  namespace: string;
  name: string;
  unit: string;
  dimensions: Record<string, string>;
  /** One value, or the values recorded during one invocation (CloudWatch sums them for Sum). */
  value: number | number[];
}

interface EmfDocument {
  _aws: { Timestamp: number; CloudWatchMetrics: Array<{ Namespace: string; Dimensions: string[][]; Metrics: Array<{ Name: string; Unit: string }> }> };
  [member: string]: unknown;
}

/** The EMF documents among `output`'s lines (log lines and other text are skipped). */
export function emfDocuments(output: string | readonly string[]): EmfDocument[] {
  const lines = (typeof output === 'string' ? [output] : output).join('').split('\n');
  return lines.flatMap((line) => {
    if (!line.startsWith('{') || !line.includes('"_aws"')) return [];
    const document = JSON.parse(line) as EmfDocument;
    return document._aws?.CloudWatchMetrics ? [document] : [];
  });
}

/** Every metric the documents in `output` publish, one entry per metric and dimension set. */
export function publishedMetrics(output: string | readonly string[]): PublishedMetric[] {
  return emfDocuments(output).flatMap((document) =>
    document._aws.CloudWatchMetrics.flatMap((directive) =>
      directive.Dimensions.flatMap((dimensionSet) =>
        directive.Metrics.map((metric) => ({
          namespace: directive.Namespace,
          name: metric.Name,
          unit: metric.Unit,
          dimensions: Object.fromEntries(dimensionSet.map((key) => [key, document[key] as string])),
          value: document[metric.Name] as number | number[],
        })),
      ),
    ),
  );
}

/** The sum of a metric's values with exactly these dimensions, over every document (what a Sum graph shows). */
export function sumOf(metrics: readonly PublishedMetric[], name: string, dimensions: Record<string, string>): number {
  const same = (a: Record<string, string>, b: Record<string, string>) => JSON.stringify(Object.entries(a).sort()) === JSON.stringify(Object.entries(b).sort());
  return metrics
    .filter((metric) => metric.name === name && same(metric.dimensions, dimensions))
    .flatMap((metric) => metric.value)
    .reduce((total, value) => total + value, 0);
}
