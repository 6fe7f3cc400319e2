import { readFile } from 'node:fs/promises';
import { Upload } from '@aws-sdk/lib-storage';
import { S3Client } from '@aws-sdk/client-s3';
import { UPLOAD_SETTINGS } from '../functions/download/mirror.ts';
import { lambdaContext } from '../local/api-gateway.ts';
import type { Span } from './critical-path.ts';
import { recordSpans, type ServiceName } from './spans.ts';

/**
 * One benchmark scenario in a process of its own, so that its peak RSS is its own: mirror `count` invoices one
 * after another (after one untimed warm-up) either through the real download handler or with a bare fetch → Upload
 * of the same three files. Prints one JSON line: the median wall time of an invoice, bytes per invoice, peak RSS.
 *
 * A third mode, `round-trips`, times nothing: for each invoice it calls the handler twice, a first download and then
 * the same request again (answered from the archive), and records a span around every request the handler sends
 * during each call (bench/spans.ts). Prints one JSON line: the spans of each call.
 */

interface ScenarioInput {
  mode: 'handler' | 'baseline' | 'round-trips';
  invoiceNos: string[];
  taxNum: string;
  fileHostUrl: string;
  s3Endpoint: string;
  bucket: string;
  /** round-trips: the services' names in the spans' labels. */
  services?: ServiceName[];
}

const input = JSON.parse(process.argv[2]!) as ScenarioInput;

/** The real handler, as API Gateway calls it for POST /download. */
async function downloadThroughHandler(): Promise<(invoiceNo: string) => Promise<{ bytes: number; fromCache: boolean }>> {
  const { handler } = await import('../functions/download/handler.ts');
  return async (invoiceNo) => {
    const event = {
      version: '2.0',
      routeKey: 'POST /download',
      rawPath: '/download',
      rawQueryString: '',
      headers: { 'content-type': 'application/json', host: 'bench' },
      requestContext: { requestId: invoiceNo, http: { method: 'POST', path: '/download' } },
      body: JSON.stringify({ taxNum: input.taxNum, invoiceNo, issueDate: '2024-04-25', direction: 'sales' }),
      isBase64Encoded: false,
    };
    const result = (await handler(event as never, lambdaContext('download', 300_000))) as { statusCode: number; body: string };
    if (result.statusCode !== 200) throw new Error(`handler answered ${result.statusCode}: ${result.body}`);
    const answer = JSON.parse(result.body) as { fromCache: boolean; files: Record<string, { bytes: number }> };
    return { bytes: Object.values(answer.files).reduce((sum, file) => sum + file.bytes, 0), fromCache: answer.fromCache };
  };
}

async function mirrorWithHandler(): Promise<(invoiceNo: string) => Promise<number>> {
  const download = await downloadThroughHandler();
  return async (invoiceNo) => (await download(invoiceNo)).bytes;
}

async function mirrorWithBareUpload(): Promise<(invoiceNo: string) => Promise<number>> {
  const client = new S3Client({
    endpoint: input.s3Endpoint,
    forcePathStyle: true,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  return async (invoiceNo) => {
    const sizes = await Promise.all(
      ['pdf', 'ofd', 'xml'].map(async (kind) => {
        const response = await fetch(`${input.fileHostUrl}/files/${invoiceNo}/${kind}.bin`);
        const upload = new Upload({
          client,
          params: { Bucket: input.bucket, Key: `baseline/${invoiceNo}/${kind}`, Body: response.body! },
          // The mirror's own multipart settings, so that only the handler's own work differs.
          ...UPLOAD_SETTINGS,
        });
        await upload.done();
        return Number(response.headers.get('content-length'));
      }),
    );
    return sizes.reduce((sum, size) => sum + size, 0);
  };
}

/**
 * Each invoice twice through the handler: a first download, then the same request answered from the archive; the
 * spans of each call. The first invoice warms up (module loading, first connections) and is not recorded.
 */
async function roundTrips(): Promise<{ firstDownload: Span[][]; cachedAnswer: Span[][] }> {
  const download = await downloadThroughHandler();
  const recorder = recordSpans(input.services ?? []);
  const recorded = { firstDownload: [] as Span[][], cachedAnswer: [] as Span[][] };
  const [warmUp, ...measured] = input.invoiceNos;
  for (const invoiceNo of [warmUp!, ...measured]) {
    for (const kind of ['firstDownload', 'cachedAnswer'] as const) {
      recorder.begin();
      const { fromCache } = await download(invoiceNo);
      const spans = recorder.end();
      if (fromCache !== (kind === 'cachedAnswer')) throw new Error(`invoice ${invoiceNo}: ${kind} answered fromCache ${fromCache}`);
      if (invoiceNo !== warmUp) recorded[kind].push(spans);
    }
  }
  recorder.close();
  return recorded;
}

const modes = { handler: mirrorWithHandler, baseline: mirrorWithBareUpload };

/**
 * This process's own peak RSS. getrusage's maxRSS is no good here: Linux carries it over from the parent across
 * fork and exec, and the parent holds the sandbox's 300 MB of files. /proc's VmHWM belongs to this process image.
 */
async function peakRss(): Promise<number> {
  const status = await readFile('/proc/self/status', 'utf8').catch(() => '');
  const kib = /^VmHWM:\s+(\d+) kB$/m.exec(status)?.[1];
  return kib ? Number(kib) * 1024 : process.resourceUsage().maxRSS * 1024;
}

if (input.mode === 'round-trips') {
  console.log(JSON.stringify(await roundTrips()));
} else {
  const mirror = await modes[input.mode]();
  const [warmUp, ...timed] = input.invoiceNos;
  await mirror(warmUp!);
  const wallMs: number[] = [];
  let bytes = 0;
  for (const invoiceNo of timed) {
    const started = performance.now();
    bytes = await mirror(invoiceNo);
    wallMs.push(performance.now() - started);
  }
  wallMs.sort((a, b) => a - b);
  console.log(
    JSON.stringify({
      medianWallMs: wallMs[Math.floor(wallMs.length / 2)],
      bytesPerInvoice: bytes,
      peakRssBytes: await peakRss(),
    }),
  );
}
