import { readFile } from 'node:fs/promises';
import { Upload } from '@aws-sdk/lib-storage';
import { S3Client } from '@aws-sdk/client-s3';
import { UPLOAD_SETTINGS } from '../functions/download/mirror.ts';
import { lambdaContext } from '../local/api-gateway.ts';
import { JUMDATA_SANDBOX_CREDENTIALS } from '../local/sandboxes/jumdata.ts';

/**
 * One benchmark scenario in a process of its own, so that its peak RSS is its own: mirror `count` invoices one
 * after another (after one untimed warm-up) either through the real download handler or with a bare fetch → Upload
 * of the same three files. Prints one JSON line: the median wall time of an invoice, bytes per invoice, peak RSS.
 *
 * A third mode, `floor`, moves no file: it times the three calls a first download cannot do without and cannot
 * overlap with anything (the claim, the billed Jumdata call, invoice.json written after the files), one after
 * another, through the project's own clients. That is the least any handler that bills once and keeps its record
 * can add to the baseline.
 */

interface ScenarioInput {
  mode: 'handler' | 'baseline' | 'floor';
  invoiceNos: string[];
  taxNum: string;
  fileHostUrl: string;
  s3Endpoint: string;
  bucket: string;
}

const input = JSON.parse(process.argv[2]!) as ScenarioInput;

async function mirrorWithHandler(): Promise<(invoiceNo: string) => Promise<number>> {
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
    const files = (JSON.parse(result.body) as { files: Record<string, { bytes: number }> }).files;
    return Object.values(files).reduce((sum, file) => sum + file.bytes, 0);
  };
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

async function sequentialCallsOnly(): Promise<(invoiceNo: string) => Promise<number>> {
  const { createJobStore } = await import('../shared/jobs.ts');
  const { createJumdataClient } = await import('../shared/providers/jumdata.ts');
  const { createS3Client, JsonStore } = await import('../shared/storage.ts');
  const { invoiceRecordKey } = await import('../functions/download/archive.ts');
  const jobs = createJobStore(process.env.JOBS_TABLE!);
  const jumdata = createJumdataClient({
    baseUrl: input.fileHostUrl,
    downloadPath: '/invoice/download',
    timeoutMs: 10_000,
    credentials: async () => JUMDATA_SANDBOX_CREDENTIALS,
  });
  const store = new JsonStore(createS3Client(input.s3Endpoint), input.bucket);
  return async (invoiceNo) => {
    const query = { taxNum: input.taxNum, invoiceNo, issueDate: '2024-04-25', direction: 'sales' as const };
    const now = new Date().toISOString();
    const record = { fn: 'download', key: `floor/${invoiceNo}`, request: query, state: 'running', attempts: 1 } as const;
    const claimed = await jobs.create({ ...record, leaseUntil: now, createdAt: now, updatedAt: now });
    if (!claimed) throw new Error('the floor claim found a record');
    const answer = await jumdata.fetchInvoice(query);
    await store.put(invoiceRecordKey(input.taxNum, `floor-${invoiceNo}`), { ...query, jumdata: answer });
    return 0;
  };
}

const modes = { handler: mirrorWithHandler, baseline: mirrorWithBareUpload, floor: sequentialCallsOnly };

/**
 * This process's own peak RSS. getrusage's maxRSS is no good here: Linux carries it over from the parent across
 * fork and exec, and the parent holds the sandbox's 300 MB of files. /proc's VmHWM belongs to this process image.
 */
async function peakRss(): Promise<number> {
  const status = await readFile('/proc/self/status', 'utf8').catch(() => '');
  const kib = /^VmHWM:\s+(\d+) kB$/m.exec(status)?.[1];
  return kib ? Number(kib) * 1024 : process.resourceUsage().maxRSS * 1024;
}

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
