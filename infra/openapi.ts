import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as z from 'zod';
import packageJson from '../package.json' with { type: 'json' };
import { downloadRequestSchema } from '../functions/download/download-invoice.ts';
import { fileLinkSchema } from '../functions/download/links.ts';
import { erpUpdateRequestSchema } from '../functions/erp-update/update-erp.ts';
import { retryRequestSchema } from '../functions/retry/retry-order.ts';
import {
  downloadPendingSchema,
  downloadResultSchema,
  erpUpdateResultSchema,
  errorBodySchema,
  fileLinkRedirectSchema,
  invoiceListSchema,
  jobListSchema,
  ledgerPendingSchema,
  auditPendingSchema,
  auditReportSchema,
  ledgerWrittenSchema,
  retryAcceptedSchema,
  retryIssuedSchema,
} from '../shared/api-responses.ts';
import { listJobsSchema } from '../shared/jobs-api.ts';
import { listInvoicesSchema } from '../functions/download/list-invoices.ts';
import { ledgerRequestSchema } from '../functions/download/ledger-job.ts';
import { auditRequestSchema } from '../functions/download/audit-job.ts';
import { ORDER_NO_MAX_LENGTH } from '../shared/validation.ts';

/**
 * The API's OpenAPI 3.1 document, made from the zod schemas the handlers validate requests with and the answer
 * schemas of shared/api-responses.ts. `npm run openapi` writes it to openapi.json; test/unit/openapi.test.ts fails
 * while the checked-in file differs from what this makes.
 *
 * No functions/<fn>/handler.ts is imported here: each reads its configuration from the environment when imported.
 */

export const OPENAPI_FILE = fileURLToPath(new URL('../openapi.json', import.meta.url));

type JsonObject = Record<string, unknown>;

/**
 * A zod schema in JSON Schema 2020-12, OpenAPI 3.1's dialect: a request as the handler accepts it (`input`, where a
 * default makes a field optional), an answer as the handler gives it (`output`). Rules zod holds only as
 * refinements (a check character, lengths in code points, a URL check) have no JSON Schema form and are left out;
 * a type with no JSON Schema form fails here, rather than being documented as "anything". The request schemas are
 * zod/mini's (they are bundled), the answer schemas classic zod's: both are zod v4 core schemas, which toJSONSchema
 * takes alike.
 */
function jsonSchema(schema: z.core.$ZodType, io: 'input' | 'output'): JsonObject {
  const { $schema: _dialect, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: 'throw' });
  return rest;
}

const requestSchemas = {
  RetryRequest: retryRequestSchema(true),
  ErpUpdateRequest: erpUpdateRequestSchema,
  DownloadRequest: downloadRequestSchema(true),
  AuditRequest: auditRequestSchema,
};
const responseSchemas = {
  RetryIssued: retryIssuedSchema,
  RetryAccepted: retryAcceptedSchema,
  ErpUpdateResult: erpUpdateResultSchema,
  DownloadResult: downloadResultSchema,
  DownloadPending: downloadPendingSchema,
  FileLinkRedirect: fileLinkRedirectSchema,
  JobList: jobListSchema,
  InvoiceList: invoiceListSchema,
  LedgerWritten: ledgerWrittenSchema,
  LedgerPending: ledgerPendingSchema,
  AuditReport: auditReportSchema,
  AuditPending: auditPendingSchema,
  Error: errorBodySchema,
};
type SchemaName = keyof typeof requestSchemas | keyof typeof responseSchemas;

const ref = (name: SchemaName) => ({ $ref: `#/components/schemas/${name}` });
const json = (name: SchemaName) => ({ 'application/json': { schema: ref(name) } });
const requestId = { $ref: '#/components/headers/RequestId' };
const retryAfter = { $ref: '#/components/headers/RetryAfter' };

const IAM = [{ sigv4: [] }];

type ErrorStatus = 400 | 403 | 404 | 409 | 410 | 415 | 422 | 429 | 500 | 502 | 503 | 504;

/** What each error status means on every route (docs/api.md); a route may say more. */
const ERRORS: Record<ErrorStatus, string> = {
  400: '`VALIDATION_FAILED`: a body that is not valid UTF-8 or not JSON, or missing or bad fields, each named in `details`. No provider call is made.',
  403: '`FORBIDDEN`',
  404: '`NOT_FOUND`',
  409:
    '`JOB_IN_PROGRESS`: another request or a sweep is working on the same job, and did not finish within the few ' +
    'seconds this request waited for it (`JOB_WAIT_MS`); `Retry-After` is the time it may still need at most (what is ' +
    'left of its own deadline, or of its claim when it died).',
  410:
    '`LINKS_EXPIRED`: the request waited for a sweep that found the file links Jumdata was paid for dead, and a sweep ' +
    'never buys new ones; asking again buys them.',
  415: '`UNSUPPORTED_MEDIA_TYPE`: the body is not sent as `application/json` (or a `+json` type) in UTF-8; the message says what is wrong.',
  422: "`UPSTREAM_REJECTED`: the provider refused with a business error; its code and message are in `upstream`.",
  429: '`DAILY_LIMIT_REACHED`: the order was re-pushed `RETRY_DAILY_LIMIT` times today (China time); `Retry-After` is the seconds to midnight.',
  500: '`INTERNAL`: anything else, never with a stack trace, a secret or a raw provider body. When the deployment lacks something (a secret with no value yet), the message says what.',
  502: '`UPSTREAM_UNAVAILABLE`: the provider could not be reached, answered HTTP 5xx, or answered something unreadable.',
  503: '`UPSTREAM_TEMPORARILY_UNAVAILABLE`: the provider says it cannot answer now; `Retry-After` says when to try again.',
  504: '`UPSTREAM_TIMEOUT`: the provider did not answer within `UPSTREAM_TIMEOUT_MS`.',
};
/** Statuses whose answer tells the caller how long to wait. A 422 does only for `UPSTREAM_RATE_LIMITED`. */
const WITH_RETRY_AFTER = new Set<ErrorStatus>([409, 422, 429, 503]);

function errors(statuses: ErrorStatus[], meanings: Partial<Record<ErrorStatus, string>> = {}) {
  return Object.fromEntries(
    statuses.map((status) => [
      status,
      {
        description: meanings[status] ?? ERRORS[status],
        headers: { 'x-request-id': requestId, ...(WITH_RETRY_AFTER.has(status) ? { 'Retry-After': retryAfter } : {}) },
        content: json('Error'),
      },
    ]),
  );
}

const success = (description: string, name: SchemaName) => ({ description, headers: { 'x-request-id': requestId }, content: json(name) });

const jsonBody = (name: keyof typeof requestSchemas, description: string) => ({ required: true, description, content: json(name) });

/** The parameters of a route from the schema its handler validates them with: path ones by the template, the rest query. */
function parametersOf(path: string, schema: z.core.$ZodType, descriptions: Record<string, string>) {
  const { properties = {}, required = [] } = jsonSchema(schema, 'input') as { properties?: Record<string, JsonObject>; required?: string[] };
  const inPath = new Set([...path.matchAll(/\{(\w+)\}/g)].map((match) => match[1]!));
  for (const name of inPath) {
    if (!required.includes(name)) throw new Error(`${path}: the schema does not require the path parameter ${name}`);
  }
  return Object.entries(properties).map(([name, parameterSchema]) => ({
    name,
    in: inPath.has(name) ? 'path' : 'query',
    required: required.includes(name),
    description: descriptions[name],
    schema: parameterSchema,
  }));
}

const FILE_LINK_PATH = '/files/{taxNum}/{invoiceNo}/{kind}';

export function openApiDocument() {
  return {
    openapi: '3.1.0',
    info: {
      title: 'einvoice-bridge',
      version: packageJson.version,
      description:
        'Re-push failed invoice orders through fw199 to Nuonuo, write invoicing results back to 旺店通 ERP, and mirror ' +
        "the tax bureau's invoice files from Jumdata into S3. Requests and responses are JSON with camelCase fields; " +
        'every response carries `x-request-id`, and every error has the one shape `Error`. Generated by `npm run ' +
        'openapi` from the zod schemas the handlers use: do not edit openapi.json by hand.',
    },
    servers: [
      {
        url: 'https://{apiId}.execute-api.{region}.{dnsSuffix}',
        description: 'The deployed stack: its ApiUrl output',
        variables: {
          apiId: { default: 'apiId', description: 'The HTTP API id' },
          region: { default: 'cn-north-1' },
          dnsSuffix: { default: 'amazonaws.com.cn', enum: ['amazonaws.com.cn', 'amazonaws.com'] },
        },
      },
      { url: 'http://127.0.0.1:3000', description: 'Local mode (`npm start`), with no IAM authorization' },
    ],
    paths: {
      '/retry': {
        post: {
          operationId: 'retryOrder',
          summary: 'Re-push a failed invoice order through fw199 to Nuonuo (开票重试)',
          description:
            'Sends exactly one re-push per request. A push that met a network failure, a timeout or HTTP 5xx is kept ' +
            'pending and pushed again by the sweep; one the gateway refused is recorded as failed.',
          tags: ['retry'],
          security: IAM,
          requestBody: jsonBody(
            'RetryRequest',
            'Also checked, beyond this schema: an 18-character `taxNum` must carry a valid GB 32100-2015 check ' +
              `character (unless the deployment sets TAX_NUM_CHECK=relaxed); \`orderNo\` is at most ${ORDER_NO_MAX_LENGTH} ` +
              'characters (Unicode code points).',
          ),
          responses: {
            200: success('The order was already issued (gateway code 100)', 'RetryIssued'),
            202: success('Nuonuo issues again (`retrying`, gateway code 0) or is still issuing (`in_progress`); the result is pushed later', 'RetryAccepted'),
            ...errors([400, 409, 415, 422, 429, 500, 502, 504], {
              422: "`UPSTREAM_REJECTED`: the gateway refused; its code and message are in `upstream`.",
            }),
          },
        },
      },
      '/erp-update': {
        post: {
          operationId: 'updateErp',
          summary: 'Write an invoicing result back to 旺店通 ERP (回传开发票结果)',
          description:
            'An update that met a network failure, a timeout or WDT code 1012 is kept pending and sent again by the ' +
            'sweep; one WDT refused is recorded as failed. A newer request for the same `invoiceNo` replaces an older ' +
            'unfinished one.',
          tags: ['erp-update'],
          security: IAM,
          requestBody: jsonBody(
            'ErpUpdateRequest',
            'Also checked, beyond this schema: `invoiceNoOut` is required when `status` is 80 (the default); lengths in ' +
              'characters (Unicode code points): `invoiceNo` ≤ 20, `invoiceNoOut` ≤ 40, `invoiceCode` ≤ 20, `errorInfo` ≤ ' +
              '255, `filePath` ≤ 1024 and an absolute http(s) URL. The handler also takes an empty or null ' +
              '`invoiceNoOut`, `errorInfo` or `filePath` as absent.',
          ),
          responses: {
            200: success('WDT took the update (code 0)', 'ErpUpdateResult'),
            ...errors([400, 409, 415, 422, 500, 502, 504], {
              422:
                "`UPSTREAM_REJECTED`: WDT refused; its code and message are in `upstream`. `UPSTREAM_RATE_LIMITED`: WDT " +
                'says it is called too often (code 1012), with `Retry-After`.',
            }),
          },
        },
      },
      '/download': {
        post: {
          operationId: 'downloadInvoice',
          summary: "Mirror an invoice's pdf, ofd and xml from Jumdata into S3",
          description:
            'Every Jumdata call is billed: an invoice already mirrored is answered from S3 (`fromCache: true`) with no ' +
            'call, and concurrent requests for one invoice make one call between them.',
          tags: ['download'],
          security: IAM,
          requestBody: jsonBody(
            'DownloadRequest',
            'Also checked, beyond this schema: an 18-character `taxNum` must carry a valid GB 32100-2015 check ' +
              'character (unless the deployment sets TAX_NUM_CHECK=relaxed).',
          ),
          responses: {
            200: success('The invoice is mirrored: presigned URLs and durable links to its files', 'DownloadResult'),
            202: {
              ...success(
                'The files could not be stored within the request\'s time (or a file host was slower than its timeout), or ' +
                  'another request is storing them and did not finish within this one\'s wait: the work is kept and a sweep ' +
                  'finishes it. In the second case `Retry-After` says when to ask again.',
                'DownloadPending',
              ),
              headers: { 'x-request-id': requestId, 'Retry-After': retryAfter },
            },
            ...errors([400, 410, 415, 422, 500, 502, 503, 504], {
              422:
                "`UPSTREAM_REJECTED`: Jumdata refused; its code and message are in `upstream` (code 301: someone must " +
                'log in to the tax bureau through Jumdata first). `UPSTREAM_RATE_LIMITED`: over quota or too frequent ' +
                '(606, 609), with `Retry-After`.',
              502: '`UPSTREAM_UNAVAILABLE`: Jumdata could not be reached or answered something unreadable, or a file could not be mirrored (which one and why is in the message); nothing is stored.',
              504: '`UPSTREAM_TIMEOUT`: a download given up after its last attempt ran out of time (`JOB_MAX_ATTEMPTS`); a slow file otherwise answers 202.',
            }),
          },
        },
      },
      [FILE_LINK_PATH]: {
        get: {
          operationId: 'openFileLink',
          summary: 'A durable link to a mirrored file: 302 to a fresh presigned S3 URL',
          description:
            'The only route without IAM authorization: the link carries its own HMAC (`sig`), made with a key the ' +
            'stack keeps in Secrets Manager, so a browser or the ERP opens it without AWS credentials. Use the `link` ' +
            'of a download answer as it is.',
          tags: ['download'],
          security: [],
          parameters: parametersOf(FILE_LINK_PATH, fileLinkSchema, {
            taxNum: 'The tax number of the company whose invoice it is',
            invoiceNo: 'The invoice number',
            kind: 'Which file',
            sig: "The link's signature",
          }),
          responses: {
            302: {
              description: 'A fresh presigned S3 URL of the file (PRESIGNED_URL_SECONDS, 10 minutes by default)',
              headers: {
                'x-request-id': requestId,
                Location: { required: true, description: 'The presigned S3 URL', schema: { type: 'string', format: 'uri' } },
                'Cache-Control': { description: 'The URL is short-lived', schema: { type: 'string', const: 'no-store' } },
              },
              content: json('FileLinkRedirect'),
            },
            ...errors([400, 403, 404, 500], {
              400: '`VALIDATION_FAILED`: no `sig`, or a kind other than pdf, ofd or xml.',
              403: '`FORBIDDEN`: the path or `sig` was changed.',
              404: '`NOT_FOUND`: a correctly signed link to an invoice that is not mirrored.',
            }),
          },
        },
      },
      '/jobs': {
        get: {
          operationId: 'listJobs',
          summary: 'The jobs that did not finish, with their last error',
          description: "Oldest due first. Jumdata's paid-for file links are never shown.",
          tags: ['jobs'],
          security: IAM,
          parameters: parametersOf('/jobs', listJobsSchema, {
            state: '`pending`: running or waiting for the next attempt; `failed`: will not be tried again',
            function: 'All three when absent',
            limit: 'Jobs per function',
            cursor: 'The `cursor` of the previous answer, for the next page',
          }),
          responses: {
            200: success('One page of jobs', 'JobList'),
            ...errors([400, 500], { 400: '`VALIDATION_FAILED`: a bad parameter, or a cursor that is not from an earlier answer.' }),
          },
        },
      },
      '/invoices': {
        get: {
          operationId: 'listInvoices',
          summary: "The archive: a taxpayer's mirrored invoices issued in a period, with their metadata",
          description:
            'By issue date (the XML\'s), then invoice number; from the index, never the bucket. Each entry is the download ' +
            "answer's invoice (without `items`), its checks, and each file's durable link, size and sha256 (no presigned URL).",
          tags: ['archive'],
          security: IAM,
          parameters: parametersOf('/invoices', listInvoicesSchema, {
            taxNum: 'The taxpayer whose invoices (as seller for sales, as buyer for purchase) are listed',
            from: 'First issue date, included',
            to: 'Last issue date, included; at most 366 days after `from`',
            direction: 'Both when absent',
            limit: 'Invoices per page at most (a page may hold fewer: the cursor goes on)',
            cursor: 'The `cursor` of the previous answer, for the next page',
          }),
          responses: {
            200: success('One page of invoices', 'InvoiceList'),
            ...errors([400, 500], { 400: '`VALIDATION_FAILED`: a bad parameter (each named), or a cursor that is not from an earlier answer to the same question.' }),
          },
        },
      },
      '/invoices/ledger': {
        get: {
          operationId: 'writeLedger',
          summary: 'The 台账 of one direction for a period: written to S3, answered with a redirect to it',
          description:
            'CSV (UTF-8 with a byte-order mark, CRLF, RFC 4180, the 21 columns, a last row 合计 with exact sums over the ' +
            'rows not voided; text starting with = + - @ tab or CR written with a leading \') or XLSX (one sheet, ' +
            'numbers as text, money as numbers with two decimals, the header frozen). Rows in `GET /invoices` order. The ' +
            'same question asked again within 15 minutes of a ledger being written gets that file.',
          tags: ['archive'],
          security: IAM,
          parameters: parametersOf('/invoices/ledger', ledgerRequestSchema, {
            taxNum: 'The taxpayer',
            from: 'First issue date, included',
            to: 'Last issue date, included; at most 366 days after `from`',
            direction: '`sales` (销项) or `purchase` (进项): one ledger each',
            format: '`csv` or `xlsx`',
          }),
          responses: {
            303: {
              description: 'The ledger is written: `Location` is a presigned URL of the file (short-lived)',
              headers: { 'x-request-id': requestId, Location: { description: 'The presigned URL', schema: { type: 'string' } } },
              content: json('LedgerWritten'),
            },
            202: {
              ...success('The ledger could not be written within the request: it is being written; ask again later', 'LedgerPending'),
              headers: { 'x-request-id': requestId, 'Retry-After': retryAfter },
            },
            ...errors([400, 500]),
          },
        },
      },
      '/audits': {
        post: {
          operationId: 'auditArchive',
          summary: 'The integrity audit: every mirrored invoice (or one taxpayer\'s) checked against what was recorded',
          description:
            'For each invoice: invoice.json present; each file at its recorded version (nothing written over it), with its ' +
            "recorded size and checksum (S3's own where it keeps one, otherwise the file is read); with Object Lock, locked " +
            'at least as configured (a shorter lock is extended). Then files of no complete invoice, older than a day, are ' +
            'removed by version (or reported with their lock). The report is written under `audits/`. A run that does not ' +
            'finish within the request answers 202 and goes on in the background from where it stopped.',
          tags: ['archive'],
          security: IAM,
          requestBody: jsonBody('AuditRequest', '`{}` for the whole archive, or `{"taxNum"}` for one taxpayer.'),
          responses: {
            200: success('The audit finished: its report', 'AuditReport'),
            202: {
              ...success('The audit goes on in the background; GET /audits/latest shows where it is', 'AuditPending'),
              headers: { 'x-request-id': requestId, 'Retry-After': retryAfter },
            },
            ...errors([400, 415, 500]),
          },
        },
      },
      '/audits/latest': {
        get: {
          operationId: 'latestAudit',
          summary: 'The last audit report started, whichever run wrote it (the schedule\'s or a request\'s), finished or not',
          tags: ['archive'],
          security: IAM,
          responses: {
            200: success('The report; `finished` says whether the run is over', 'AuditReport'),
            ...errors([404, 500], { 404: '`NOT_FOUND`: no audit has run yet.' }),
          },
        },
      },
    },
    components: {
      schemas: {
        ...Object.fromEntries(Object.entries(requestSchemas).map(([name, schema]) => [name, jsonSchema(schema, 'input')])),
        ...Object.fromEntries(Object.entries(responseSchemas).map(([name, schema]) => [name, jsonSchema(schema, 'output')])),
      },
      headers: {
        RequestId: { description: "API Gateway's request id, also in every log line as `correlation_id`", schema: { type: 'string' } },
        RetryAfter: { description: 'Seconds to wait before asking again', schema: { type: 'string', pattern: '^[0-9]+$' } },
      },
      securitySchemes: {
        sigv4: {
          type: 'apiKey',
          name: 'Authorization',
          in: 'header',
          'x-amazon-apigateway-authtype': 'awsSigv4',
          description:
            'IAM: requests signed with AWS Signature Version 4 for the service `execute-api`, by a caller allowed ' +
            '`execute-api:Invoke` on the API. API Gateway refuses any other request itself, before a function runs, ' +
            "and its answers have API Gateway's shape, not this API's error shape: 403 `{\"message\": \"Forbidden\"}` " +
            '(no or a bad signature, or no permission). On every route, API Gateway also answers 429 ' +
            '`{"message": "Too Many Requests"}` beyond the stage\'s throttling (20 requests/s, bursts of 40) and 503 ' +
            '`{"message": "Service Unavailable"}` when the function does not answer in time (it answers within 25 s ' +
            'itself), or 500 `{"message": "Internal Server Error"}` when the function crashed.',
        },
      },
    },
  };
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  writeFileSync(OPENAPI_FILE, `${JSON.stringify(openApiDocument(), null, 2)}\n`);
  console.log(`wrote ${OPENAPI_FILE}`);
}
