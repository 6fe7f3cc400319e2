import { existsSync, readFileSync } from 'node:fs';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { Ajv2020, type Options } from 'ajv/dist/2020.js';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { afterAll, beforeAll, describe, expect, expectTypeOf, it } from 'vitest';
import type * as z from 'zod';
import {
  downloadPendingSchema,
  downloadResultSchema,
  erpUpdateResultSchema,
  errorBodySchema,
  fileLinkRedirectSchema,
  invoiceListSchema,
  jobListSchema,
  retryAcceptedSchema,
  retryIssuedSchema,
} from '#shared/api-responses';
import {
  ConfigurationError,
  DailyLimitReachedError,
  type ErrorBody,
  ForbiddenError,
  JobInProgressError,
  LinksExpiredError,
  NotFoundError,
  toErrorResponse,
  UnsupportedMediaTypeError,
  UpstreamRateLimitedError,
  UpstreamRejectedError,
  UpstreamTemporaryError,
  UpstreamTimeoutError,
  UpstreamUnavailableError,
  ValidationError,
} from '#shared/errors';
import { listJobsSchema, listJobs } from '#shared/jobs-api';
import { JobStore } from '#shared/jobs';
import type { HttpReply } from '#shared/middleware';
import { interpretRebillingAnswer, type RebillingOutcome } from '#shared/providers/fw199';
import { TaxBureauLoginRequiredError } from '#shared/providers/jumdata';
import type { MirroredInvoice } from '../../functions/download/archive.ts';
import { downloadRequestSchema } from '../../functions/download/download-invoice.ts';
import { fileLinkSchema, presignGet } from '../../functions/download/links.ts';
import { presentInvoice } from '../../functions/download/present.ts';
import { erpUpdateRequestSchema, updateErp, type ErpUpdateResult } from '../../functions/erp-update/update-erp.ts';
import { retryOrder, retryRequestSchema } from '../../functions/retry/retry-order.ts';
import { answerRetry } from '../../functions/retry/answer.ts';
import { answerErpUpdate } from '../../functions/erp-update/answer.ts';
import { InvoiceStack } from '../../infra/invoice-stack.ts';
import { OPENAPI_FILE, openApiDocument } from '../../infra/openapi.ts';
import { startLocalDynamo, type LocalDynamo } from '../../local/dynamodb.ts';

/**
 * openapi.json against the code: the checked-in file is what the generator makes, its routes are the stack's, its
 * request schemas accept and refuse what the handlers do (except where a handler's rule is a zod refinement, which
 * JSON Schema cannot carry), and real answers of the handlers match the schema it gives for their status.
 */

interface Reference {
  $ref: string;
}
interface Parameter {
  name: string;
  in: 'path' | 'query';
  required: boolean;
  schema: object;
}
interface Operation {
  security: Array<Record<string, string[]>>;
  requestBody?: { content: Record<string, { schema: Reference }> };
  parameters?: Parameter[];
  responses: Record<string, { headers?: Record<string, unknown>; content: Record<string, { schema: Reference }> }>;
}
interface Document {
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, { properties?: Record<string, unknown>; required?: string[] }>; securitySchemes: Record<string, object> };
}

const document = openApiDocument() as unknown as Document;

// Formats are left to the patterns zod writes beside them (a date, a date-time); a URL has none, so it is checked here.
const ajvOptions = {
  allErrors: true,
  allowUnionTypes: true,
  formats: { date: true, 'date-time': true, uri: (value: string) => URL.canParse(value) },
} satisfies Options;
const ajv = new Ajv2020(ajvOptions);
// Path and query parameters arrive as text: `limit=20` is the integer 20, as the handler's zod coercion reads it.
const ajvForParameters = new Ajv2020({ ...ajvOptions, coerceTypes: true });

const componentOf = (reference: Reference) => {
  const schema = document.components.schemas[reference.$ref.replace('#/components/schemas/', '')];
  expect(schema, `${reference.$ref} is not in components.schemas`).toBeDefined();
  return schema!;
};
const operationOf = (route: string) => {
  const [method, path] = route.split(' ') as [string, string];
  const operation = document.paths[path]?.[method.toLowerCase()];
  expect(operation, `${route} is not in the document`).toBeDefined();
  return operation!;
};
const requestSchemaOf = (route: string) => componentOf(operationOf(route).requestBody!.content['application/json']!.schema);

/** The document's verdict on a value: no errors, or ajv's. */
const documentErrors = (schema: object, value: unknown, validator = ajv) =>
  validator.validate(schema, structuredClone(value)) ? [] : validator.errors;
const documentAccepts = (schema: object, value: unknown) => documentErrors(schema, value)!.length === 0;

/** Asserts that the document lists the answer's status for the route, with a schema (and headers) that fit it. */
function expectDocumented(route: string, { statusCode, body, headers }: HttpReply) {
  const response = operationOf(route).responses[statusCode];
  expect(response, `${route} does not document ${statusCode}`).toBeDefined();
  const sent: unknown = JSON.parse(JSON.stringify(body)); // as the HTTP layer sends it: no undefined fields
  expect(documentErrors(componentOf(response!.content['application/json']!.schema), sent), `${route} ${statusCode}`).toEqual([]);
  const documentedHeaders = Object.keys(response!.headers ?? {}).map((name) => name.toLowerCase());
  for (const name of Object.keys(headers ?? {})) expect(documentedHeaders, `${route} ${statusCode}`).toContain(name.toLowerCase());
}

/** The answer the HTTP layer gives: the reply, or the error's mapping (shared/middleware.ts does the same). */
async function answerOf(call: () => Promise<HttpReply>): Promise<HttpReply> {
  try {
    return await call();
  } catch (error) {
    return toErrorResponse(error);
  }
}

describe('openapi.json', () => {
  it('is what npm run openapi makes from the code', () => {
    expect(existsSync(OPENAPI_FILE), 'openapi.json is missing: run `npm run openapi`').toBe(true);
    const checkedIn: unknown = JSON.parse(readFileSync(OPENAPI_FILE, 'utf8'));
    expect(checkedIn, 'openapi.json is out of date: run `npm run openapi` and commit it').toStrictEqual(
      JSON.parse(JSON.stringify(openApiDocument())),
    );
  });
});

describe("the document's routes", () => {
  let stackRoutes: Array<{ RouteKey: string; AuthorizationType: string }>;

  beforeAll(() => {
    // Bundling is skipped (fast); only the routes are read.
    const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
    const template = Template.fromStack(new InvoiceStack(app, 'OpenApiTest'));
    stackRoutes = Object.values(template.findResources('AWS::ApiGatewayV2::Route')).map((route) => route.Properties);
  });

  const documentRoutes = () =>
    Object.entries(document.paths).flatMap(([path, operations]) =>
      Object.entries(operations).map(([method, operation]) => ({ route: `${method.toUpperCase()} ${path}`, operation })),
    );

  it('are the routes of the stack', () => {
    expect(documentRoutes().map(({ route }) => route).sort()).toEqual(stackRoutes.map((route) => route.RouteKey).sort());
  });

  it('need SigV4 exactly where the stack has IAM authorization, with a scheme the document declares', () => {
    const documented = documentRoutes().map(({ route, operation }) => [route, operation.security.length > 0 ? 'AWS_IAM' : 'NONE']);
    expect(documented.sort()).toEqual(stackRoutes.map((route) => [route.RouteKey, route.AuthorizationType]).sort());
    const schemes = documentRoutes().flatMap(({ operation }) => operation.security.flatMap((requirement) => Object.keys(requirement)));
    for (const scheme of schemes) {
      expect(document.components.securitySchemes[scheme]).toMatchObject({ type: 'apiKey', 'x-amazon-apigateway-authtype': 'awsSigv4' });
    }
  });
});

const FILE_LINK = '/files/{taxNum}/{invoiceNo}/{kind}';
const taxNum = '91310117568051222X';
const invoiceNo = '24312000000022669098';

/**
 * Per route: the handler's schema, the docs' example bodies, one body holding every field, bodies both refuse, and
 * where they knowingly differ (`handlerOnly`: a refinement the document cannot carry; `documentOnly`: a value the
 * handler takes as absent that the schema, typed as it is, refuses).
 */
const bodyRoutes = [
  {
    route: 'POST /retry',
    schema: retryRequestSchema(true),
    examples: [
      { taxNum, orderNo: '20240122150518179381' },
      { taxNum, orderNo: 'SANDBOX-ISSUED' },
    ],
    everyField: { taxNum, orderNo: '20240122150518179381' },
    refused: [
      ["the docs' bad request", { taxNum: '123', orderNo: '' }],
      ['a lower-case tax number', { taxNum: taxNum.toLowerCase(), orderNo: '1' }],
      ['an order number with a space', { taxNum, orderNo: '2024 01' }],
      ['an order number with an emoji', { taxNum, orderNo: '2024😀' }],
      ['a tax number sent as a number', { taxNum: 913101175680512, orderNo: '1' }],
      ['no order number', { taxNum }],
    ],
    handlerOnly: [
      ['an 18-character tax number with a wrong check character', { taxNum: '91310117568051222Y', orderNo: '1' }],
      ['an order number of 65 characters', { taxNum, orderNo: '1'.repeat(65) }],
    ],
    documentOnly: [],
  },
  {
    route: 'POST /erp-update',
    schema: erpUpdateRequestSchema,
    examples: [
      { invoiceNo: 'DZ202202150004', status: 80, invoiceNoOut: invoiceNo, invoiceCode: '', filePath: `https://example.com/fp/${invoiceNo}.pdf` },
      { invoiceNo: 'FP202401220001', status: 75, errorInfo: '购方税号错误' },
    ],
    everyField: {
      invoiceNo: 'FP202401220001',
      status: 75,
      invoiceNoOut: invoiceNo,
      invoiceCode: '',
      errorInfo: '购方税号错误',
      filePath: 'https://example.com/fp/1.pdf',
    },
    refused: [
      ['a status outside 65/75/80', { invoiceNo: 'DZ1', status: 70, invoiceNoOut: '1' }],
      ['a status sent as text', { invoiceNo: 'DZ1', status: '80', invoiceNoOut: '1' }],
      ['no invoiceNo', { status: 75 }],
      ['an invoiceNo with a space', { invoiceNo: 'DZ 1', status: 75 }],
      ['an invoiceCode with a tab', { invoiceNo: 'DZ1', status: 75, invoiceCode: '0\t1' }],
      ['an invoiceNoOut of full-width digits', { invoiceNo: 'DZ1', status: 80, invoiceNoOut: '２４３１２０００' }],
      ['an invoiceCode of 21 digits', { invoiceNo: 'DZ1', status: 75, invoiceCode: '0'.repeat(21) }],
      ['an errorInfo sent as a number', { invoiceNo: 'DZ1', status: 75, errorInfo: 42 }],
      ['a filePath with a space', { invoiceNo: 'DZ1', status: 75, filePath: 'https://e.com/a b.pdf' }],
    ],
    handlerOnly: [
      ['status 80 (the default) without invoiceNoOut', { invoiceNo: 'DZ1' }],
      ['an invoiceNo of 21 characters', { invoiceNo: 'D'.repeat(21), status: 75 }],
      ['an errorInfo of 256 characters', { invoiceNo: 'DZ1', status: 75, errorInfo: '错'.repeat(256) }],
      ['a filePath that is not an http(s) URL', { invoiceNo: 'DZ1', status: 75, filePath: 'ftp://e.com/1.pdf' }],
    ],
    documentOnly: [
      ['an empty invoiceNoOut', { invoiceNo: 'DZ1', status: 75, invoiceNoOut: '' }],
      ['a null errorInfo', { invoiceNo: 'DZ1', status: 75, errorInfo: null }],
      ['a null invoiceCode', { invoiceNo: 'DZ1', status: 75, invoiceCode: null }],
    ],
  },
  {
    route: 'POST /download',
    schema: downloadRequestSchema(true),
    examples: [
      { taxNum, invoiceNo, issueDate: '2024-04-25', direction: 'sales' },
      { taxNum, invoiceNo, issueDate: '2024-04-25', direction: 'sales', erp: { invoiceNo: 'FP202401220001', file: 'pdf' } },
    ],
    everyField: { taxNum, invoiceNo, issueDate: '2024-04-25', direction: 'purchase', erp: { invoiceNo: 'FP202401220001', file: 'ofd' } },
    refused: [
      ['an invoice number of 9 digits', { taxNum, invoiceNo: '243120000', issueDate: '2024-04-25', direction: 'sales' }],
      ['an erp block without its invoice number', { taxNum, invoiceNo, issueDate: '2024-04-25', direction: 'sales', erp: { file: 'pdf' } }],
      ['an erp file of another kind', { taxNum, invoiceNo, issueDate: '2024-04-25', direction: 'sales', erp: { invoiceNo: 'FP202401220001', file: 'jpg' } }],
      ['a date that does not exist', { taxNum, invoiceNo, issueDate: '2024-02-30', direction: 'sales' }],
      ['a date with slashes', { taxNum, invoiceNo, issueDate: '2024/04/25', direction: 'sales' }],
      ['an unknown direction', { taxNum, invoiceNo, issueDate: '2024-04-25', direction: 'both' }],
      ['no direction', { taxNum, invoiceNo, issueDate: '2024-04-25' }],
    ],
    handlerOnly: [
      ['an 18-character tax number with a wrong check character', { taxNum: '91310117568051222Y', invoiceNo, issueDate: '2024-04-25', direction: 'sales' }],
      ['an issue date before 2015', { taxNum, invoiceNo, issueDate: '2014-12-31', direction: 'sales' }],
      ['an issue date after tomorrow', { taxNum, invoiceNo, issueDate: '2099-01-01', direction: 'sales' }],
    ],
    documentOnly: [],
  },
] as const;

describe("the document's request bodies", () => {
  const examples = bodyRoutes.flatMap(({ route, schema, examples }) => examples.map((body) => ({ route, schema, body })));
  it.each(examples)("accept the docs' example for $route: $body", ({ route, schema, body }) => {
    expect(schema.safeParse(body).success).toBe(true);
    expect(documentErrors(requestSchemaOf(route), body)).toEqual([]);
  });

  const refused = bodyRoutes.flatMap(({ route, schema, refused }) => refused.map(([label, body]) => ({ route, schema, label, body })));
  it.each(refused)('refuse $label for $route, as the handler does', ({ route, schema, label, body }) => {
    expect(schema.safeParse(body).success, label).toBe(false);
    expect(documentAccepts(requestSchemaOf(route), body), label).toBe(false);
  });

  const handlerOnly = bodyRoutes.flatMap(({ route, schema, handlerOnly }) => handlerOnly.map(([label, body]) => ({ route, schema, label, body })));
  it.each(handlerOnly)('leave $label for $route to the handler: its rule is a refinement', ({ route, schema, label, body }) => {
    expect(schema.safeParse(body).success, label).toBe(false);
    expect(documentAccepts(requestSchemaOf(route), body), label).toBe(true);
  });

  const documentOnly = bodyRoutes.flatMap(({ route, schema, documentOnly }) => documentOnly.map(([label, body]) => ({ route, schema, label, body })));
  it.each(documentOnly)('refuse $label for $route, which the handler takes as absent', ({ route, schema, label, body }) => {
    expect(schema.safeParse(body).success, label).toBe(true);
    expect(documentAccepts(requestSchemaOf(route), body), label).toBe(false);
  });

  it.each(bodyRoutes)('require for $route exactly the fields without which the handler refuses the body', ({ route, schema, everyField }) => {
    const documented = requestSchemaOf(route);
    expect(Object.keys(documented.properties ?? {}).sort()).toEqual(Object.keys(everyField).sort());
    expect(schema.safeParse(everyField).success).toBe(true);
    const neededByHandler = Object.keys(everyField).filter((field) => {
      const { [field]: _left, ...rest } = everyField as Record<string, unknown>;
      return !schema.safeParse(rest).success;
    });
    expect([...(documented.required ?? [])].sort()).toEqual(neededByHandler.sort());
  });
});

describe("the document's parameters", () => {
  /** The route's parameters as one object schema, the way the handler validates them together. */
  const parametersSchemaOf = (route: string) => {
    const parameters = operationOf(route).parameters ?? [];
    return {
      type: 'object',
      properties: Object.fromEntries(parameters.map((parameter) => [parameter.name, parameter.schema])),
      required: parameters.filter((parameter) => parameter.required).map((parameter) => parameter.name),
    };
  };

  const jobsQuery = (label: string, query: object, valid: boolean) => ({ route: 'GET /jobs', schema: listJobsSchema, label, query, valid });
  const link = { taxNum, invoiceNo, kind: 'pdf', sig: 'c2lnbmF0dXJl' };
  const fileLink = (label: string, query: object, valid: boolean) => ({ route: `GET ${FILE_LINK}`, schema: fileLinkSchema, label, query, valid });
  const cases = [
    jobsQuery("the docs' pending jobs", { state: 'pending' }, true),
    jobsQuery("the docs' failed retry jobs, 20 a page", { state: 'failed', function: 'retry', limit: '20' }, true),
    jobsQuery('a cursor', { state: 'pending', cursor: 'eyJyZXRyeSI6IngifQ' }, true),
    jobsQuery('no state', {}, false),
    jobsQuery('a done state', { state: 'done' }, false),
    jobsQuery('an unknown function', { state: 'pending', function: 'sweep' }, false),
    jobsQuery('a limit of 0', { state: 'pending', limit: '0' }, false),
    jobsQuery('a limit of 101', { state: 'pending', limit: '101' }, false),
    jobsQuery('a fractional limit', { state: 'pending', limit: '2.5' }, false),
    fileLink('a link from a download answer', link, true),
    fileLink('a link without sig', { ...link, sig: undefined }, false),
    fileLink('an empty sig', { ...link, sig: '' }, false),
    fileLink('a kind other than pdf/ofd/xml', { ...link, kind: 'zip' }, false),
    fileLink('an invoice number of 9 digits', { ...link, invoiceNo: '243120000' }, false),
  ];

  it.each(cases)('of $route judge $label as the handler does', ({ route, schema, query, valid }) => {
    const sent = JSON.parse(JSON.stringify(query)) as Record<string, string>;
    expect(schema.safeParse(sent).success).toBe(valid);
    expect(documentErrors(parametersSchemaOf(route), sent, ajvForParameters)!.length === 0).toBe(valid);
  });

  it('put every placeholder of a path among its required path parameters', () => {
    for (const [path, operations] of Object.entries(document.paths)) {
      const placeholders = [...path.matchAll(/\{(\w+)\}/g)].map((match) => match[1]);
      for (const operation of Object.values(operations)) {
        const inPath = (operation.parameters ?? []).filter((parameter) => parameter.in === 'path');
        expect(inPath.map((parameter) => parameter.name)).toEqual(placeholders);
        expect(inPath.every((parameter) => parameter.required)).toBe(true);
      }
    }
  });
});

describe('the answer schemas', () => {
  it('type the error body, the erp-update result and every retry outcome as the code does', () => {
    expectTypeOf<z.output<typeof errorBodySchema>>().toEqualTypeOf<ErrorBody>();
    expectTypeOf<z.output<typeof erpUpdateResultSchema>>().toEqualTypeOf<ErpUpdateResult>();
    expectTypeOf<{ orderNo: string } & RebillingOutcome>().toExtend<z.output<typeof retryIssuedSchema> | z.output<typeof retryAcceptedSchema>>();
  });

  // docs/api.md elides parts of some answers (…); those parts are filled in here with values of the same form. Of the
  // pending download it shows only `{"status": "pending", …}`: the rest is what the download handler adds.
  const presigned = 'https://einvoice-bridge.s3.cn-north-1.amazonaws.com.cn/invoices/91310117568051222X/24312000000022669098/pdf.pdf?X-Amz-Expires=600';
  const durable = (kind: string) => `http://127.0.0.1:3000/files/${taxNum}/${invoiceNo}/${kind}?sig=6Y2bq1x8Hq8sQ6b8tq0m3tq1oX9z9o7Y5c6B2s0qV1w`;
  const file = (kind: string, contentType: string) => ({
    url: presigned,
    expiresAt: '2026-11-22T03:46:11.186Z',
    link: durable(kind),
    bytes: 534,
    sha256: '823c6c7bd5f9d8aa0b2c0e0c29ac1a3e1e1b0c8e7f3c1b59a1f2d3e4c5b6a798',
    contentType,
  });
  /** the docs' example invoice metadata (docs/api.md, "The archive"). */
  const readmeInvoice = {
    number: invoiceNo,
    issuedAt: '2024-04-25 15:58:41',
    type: '普通发票',
    seller: { taxNum, name: '上海示例信息技术有限公司' },
    buyer: { taxNum: '91110000600037341L', name: '北京示例贸易有限公司' },
    amount: '1200.00',
    tax: '93.00',
    total: '1293.00',
    items: [
      { name: '*信息技术服务*软件维护服务费', spec: 'V1', unit: '项', quantity: '1', unitPrice: '1000', amount: '1000.00', taxRate: '6%', tax: '60.00' },
      { name: '*信息技术服务*软件维护服务费', spec: '', unit: '', quantity: '', unitPrice: '', amount: '-100.00', taxRate: '6%', tax: '-6.00' },
    ],
    redLetterOf: null,
    remark: '合同号 HT-2024-0425',
    voided: false,
    redFlushed: false,
    buyerTaxNum: '91110000600037341L',
    verification: '经查验,发票信息一致',
  };
  const readmeAnswers = [
    {
      label: 'an issued order',
      route: 'POST /retry',
      schema: retryIssuedSchema,
      answer: {
        statusCode: 200,
        body: {
          orderNo: 'SANDBOX-ISSUED',
          status: 'issued',
          message: '发票已经生成,不需要重复提交',
          invoiceNo,
          pdfUrl: 'http://127.0.0.1:…/sandbox/invoices/24312000000022669098.pdf',
        },
      },
    },
    {
      label: 'a bad retry request',
      route: 'POST /retry',
      schema: errorBodySchema,
      answer: {
        statusCode: 400,
        body: {
          error: {
            code: 'VALIDATION_FAILED',
            message: 'The request is not valid',
            details: [
              { field: 'taxNum', message: 'must be 15 to 20 digits or capital letters' },
              { field: 'orderNo', message: 'must not be empty' },
            ],
          },
        },
      },
    },
    {
      label: 'an invoice issued',
      route: 'POST /erp-update',
      schema: erpUpdateResultSchema,
      answer: { statusCode: 200, body: { invoiceNo: 'DZ202202150004', status: 80, message: 'OK' } },
    },
    {
      label: 'an invoicing failure',
      route: 'POST /erp-update',
      schema: erpUpdateResultSchema,
      answer: { statusCode: 200, body: { invoiceNo: 'FP202401220001', status: 75, message: 'OK' } },
    },
    {
      label: 'a mirrored invoice',
      route: 'POST /download',
      schema: downloadResultSchema,
      answer: {
        statusCode: 200,
        body: {
          taxNum,
          invoiceNo,
          issueDate: '2024-04-25',
          direction: 'sales',
          fromCache: false,
          mirroredAt: '2026-11-22T03:36:11.172Z',
          invoice: readmeInvoice,
          checks: { xmlRead: true, numberMatches: true, partyMatches: true, itemsAddUp: true },
          files: { pdf: file('pdf', 'application/pdf'), ofd: file('ofd', 'application/zip'), xml: file('xml', 'application/zip') },
        },
      },
    },
    {
      label: 'a page of the archive',
      route: 'GET /invoices',
      schema: invoiceListSchema,
      answer: {
        statusCode: 200,
        body: {
          invoices: [
            {
              taxNum,
              invoiceNo,
              issueDate: '2024-04-25',
              direction: 'sales',
              mirroredAt: '2026-11-22T03:36:11.172Z',
              invoice: (({ items: _items, ...rest }) => rest)(readmeInvoice),
              checks: { xmlRead: true, numberMatches: true, partyMatches: true, itemsAddUp: true },
              files: Object.fromEntries(
                (['pdf', 'ofd', 'xml'] as const).map((kind) => {
                  const { url: _url, expiresAt: _expiresAt, ...listed } = file(kind, kind === 'pdf' ? 'application/pdf' : 'application/zip');
                  return [kind, listed];
                }),
              ),
            },
          ],
          cursor: 'eyJwayI6Ii4uLiJ9',
        },
      },
    },
    {
      label: 'a pending download',
      route: 'POST /download',
      schema: downloadPendingSchema,
      answer: {
        statusCode: 202,
        body: {
          taxNum,
          invoiceNo: '24312000000000000001',
          issueDate: '2024-04-25',
          status: 'pending',
          message: 'the files are still being mirrored; the work is kept and will be finished later',
        },
      },
    },
    {
      label: 'the pending jobs',
      route: 'GET /jobs',
      schema: jobListSchema,
      answer: {
        statusCode: 200,
        body: {
          state: 'pending',
          cursor: 'eyJyZXRyeSI6IuKApiJ9',
          jobs: [
            {
              function: 'retry',
              key: '91310117568051222X/SANDBOX-HTTP-500',
              state: 'pending',
              request: { taxNum, orderNo: 'SANDBOX-HTTP-500' },
              attempts: 1,
              lastError: { code: 'UPSTREAM_UNAVAILABLE', message: 'fw199 answered HTTP 500', statusCode: 502 },
              nextAttemptAt: '2026-11-23T05:31:49.255Z',
              createdAt: '2026-11-23T05:30:49.101Z',
              updatedAt: '2026-11-23T05:30:49.255Z',
            },
          ],
        },
      },
    },
  ] as const;

  it.each(readmeAnswers)("describe the docs' example of $label", ({ route, schema, answer }) => {
    expect(schema.safeParse(answer.body).error?.issues ?? []).toEqual([]);
    expectDocumented(route, answer);
  });

  it("describe the error shape of docs/api.md", () => {
    const body = {
      error: {
        code: 'VALIDATION_FAILED',
        message: '...',
        details: [{ field: 'taxNum', message: '...' }],
        upstream: { provider: 'fw199', code: 9001, message: '...' },
      },
    };
    expect(errorBodySchema.safeParse(body).success).toBe(true);
    expect(documentErrors(componentOf({ $ref: '#/components/schemas/Error' }), body)).toEqual([]);
  });

  describe('against real answers', () => {
    let dynamo: LocalDynamo;
    let client: DynamoDBClient;
    let store: JobStore;
    const jobs = () => ({ store, leaseSeconds: 60, policy: { maxAttempts: 3, backoffBaseSeconds: 60, backoffMaxSeconds: 3600 }, waitMs: 0 });

    beforeAll(async () => {
      dynamo = await startLocalDynamo({ tables: ['jobs'] });
      client = new DynamoDBClient({ endpoint: dynamo.endpoint, region: 'cn-north-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
      store = new JobStore(client, 'jobs');
    });
    afterAll(async () => {
      client.destroy();
      await dynamo.close();
    });

    it('describe what POST /retry answers, and GET /jobs after it', async () => {
      // Prepare: the gateway's answers by order number, read by the real fw199 interpretation
      const gateway: Record<string, unknown> = {
        'ORDER-RETRYING': { code: 0, message: '重试成功' },
        'ORDER-ISSUED': { code: 100, message: '发票已经生成,不需要重复提交', invoice_no: invoiceNo, invoice_down_url: `https://fw199.example/${invoiceNo}.pdf` },
        'ORDER-IN-PROGRESS': { code: 9002, message: '开票中(重试中),请稍后' },
        'ORDER-REFUSED': { code: 9001, message: '本次操作需登录电子发票服务平台' },
      };
      const retry = retryOrder({
        checkCreditCode: true,
        dailyLimit: 1,
        jobs: jobs(),
        client: {
          rebill: async ({ orderNo }) => {
            if (orderNo === 'ORDER-UNREACHABLE') throw new UpstreamUnavailableError('fw199', 'fw199 answered HTTP 500');
            return interpretRebillingAnswer(gateway[orderNo]);
          },
        },
      });
      const push = (orderNo: string) => answerOf(() => answerRetry(retry, { taxNum, orderNo }, { timeoutMs: 5_000 }));

      // Act
      const answers = [
        await push('ORDER-RETRYING'),
        await push('ORDER-ISSUED'),
        await push('ORDER-IN-PROGRESS'),
        await push('ORDER-REFUSED'),
        await push('ORDER-UNREACHABLE'),
        await push('ORDER-ISSUED'),
        await answerOf(() => answerRetry(retry, { taxNum, orderNo: '' }, { timeoutMs: 5_000 })),
      ];
      const pending = await answerOf(() => listJobs(store, { state: 'pending', function: 'retry' }));
      const failed = await answerOf(() => listJobs(store, { state: 'failed' }));

      // Assess
      expect(answers.map((answer) => answer.statusCode)).toEqual([202, 200, 202, 422, 502, 429, 400]);
      for (const answer of answers) expectDocumented('POST /retry', answer);
      // A push that met HTTP 5xx, and one over the daily limit, are tried again; the refused one is not.
      const lastErrors = (answer: HttpReply) =>
        (answer.body as { jobs: Array<{ key: string; lastError: { code: string } }> }).jobs.map((job) => [job.key, job.lastError.code]).sort();
      expect(lastErrors(pending)).toEqual([
        [`${taxNum}/ORDER-ISSUED`, 'DAILY_LIMIT_REACHED'],
        [`${taxNum}/ORDER-UNREACHABLE`, 'UPSTREAM_UNAVAILABLE'],
      ]);
      expect(lastErrors(failed)).toEqual([[`${taxNum}/ORDER-REFUSED`, 'UPSTREAM_REJECTED']]);
      expectDocumented('GET /jobs', pending);
      expectDocumented('GET /jobs', failed);
      expectDocumented('GET /jobs', await answerOf(() => listJobs(store, { state: 'pending', cursor: 'not-a-cursor' })));
    });

    it('describe what POST /erp-update answers', async () => {
      const erp = updateErp({
        jobs: jobs(),
        client: {
          updateInvoice: async ({ invoiceNo: number }) => {
            if (number === 'DZ-RATE-LIMITED') throw new UpstreamRateLimitedError('wdt', 1012, '调用太频繁', 30);
            if (number === 'DZ-UNKNOWN') throw new UpstreamRejectedError('wdt', 30000, '发票编号在系统中不存在');
            return { message: 'OK' };
          },
        },
      });
      const answers = [
        await answerOf(() => answerErpUpdate(erp, { invoiceNo: 'DZ202202150004', status: 80, invoiceNoOut: invoiceNo }, { timeoutMs: 5_000 })),
        await answerOf(() => answerErpUpdate(erp, { invoiceNo: 'FP202401220001', status: 65, errorInfo: '购方税号错误' }, { timeoutMs: 5_000 })),
        await answerOf(() => answerErpUpdate(erp, { invoiceNo: 'DZ-RATE-LIMITED', status: 75 }, { timeoutMs: 5_000 })),
        await answerOf(() => answerErpUpdate(erp, { invoiceNo: 'DZ-UNKNOWN', status: 75 }, { timeoutMs: 5_000 })),
        await answerOf(() => answerErpUpdate(erp, { invoiceNo: 'DZ1' }, { timeoutMs: 5_000 })),
      ];
      expect(answers.map((answer) => answer.statusCode)).toEqual([200, 200, 422, 422, 400]);
      for (const answer of answers) expectDocumented('POST /erp-update', answer);
    });

    it('describe what POST /download and GET /files answer for a mirrored invoice', async () => {
      const s3 = new S3Client({ region: 'cn-north-1', credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' } });
      const stored = (kind: string, contentType: string) => ({
        key: `invoices/${taxNum}/${invoiceNo}/${kind}`,
        bytes: 534,
        sha256: 'a'.repeat(64),
        contentType,
        versionId: 'v1',
      });
      const record: MirroredInvoice = {
        taxNum,
        invoiceNo,
        issueDate: '2024-04-25',
        direction: 'sales',
        mirroredAt: new Date().toISOString(),
        invoice: { voided: false, redFlushed: false },
        jumdata: { taskNo: 'T1', charged: true, fields: {} },
        files: { pdf: stored('pdf.pdf', 'application/pdf'), ofd: stored('ofd.zip', 'application/zip'), xml: stored('xml.zip', 'application/zip') },
      };
      const links = { s3, bucket: 'einvoice-bridge-archive', linkKey: 'k'.repeat(64), baseUrl: 'https://api.example.com/', presignSeconds: 600 };

      expectDocumented('POST /download', { statusCode: 200, body: await presentInvoice(record, true, links) });
      const { url, expiresAt } = await presignGet(s3, links.bucket, record.files.pdf.key, 600);
      const redirect = { statusCode: 302, body: { url, expiresAt } };
      expect(fileLinkRedirectSchema.safeParse(redirect.body).success).toBe(true);
      expectDocumented(`GET ${FILE_LINK}`, redirect);
      s3.destroy();
    });
  });

  /**
   * The errors each route's code can throw, mapped as the HTTP layer maps them. Between them they make every error
   * status the route documents, and no other.
   */
  const anyRoute = [
    new ValidationError([{ field: 'body', message: 'must be a valid JSON document' }]),
    new ConfigurationError('The fw199 secret has no usable value'),
    new Error('anything else'),
  ];
  const providerRoute = (provider: 'fw199' | 'wdt' | 'jumdata') => [
    ...anyRoute,
    new UnsupportedMediaTypeError('text/plain'),
    new UpstreamRejectedError(provider, 1, 'refused'),
    new UpstreamUnavailableError(provider, `${provider} answered HTTP 500`),
    new UpstreamTimeoutError(provider, 10_000),
  ];
  const errorsByRoute = {
    'POST /retry': [...providerRoute('fw199'), new JobInProgressError('busy', 60), new DailyLimitReachedError('daily limit', 3_600)],
    'POST /erp-update': [...providerRoute('wdt'), new JobInProgressError('busy', 60), new UpstreamRateLimitedError('wdt', 1012, '调用太频繁', 30)],
    'POST /download': [
      ...providerRoute('jumdata'),
      new TaxBureauLoginRequiredError(taxNum, '需要登录'),
      new UpstreamRateLimitedError('jumdata', 609, '调用太频繁', 60),
      new UpstreamTemporaryError('jumdata', 399, '税局维护', 60),
      // Answered to a request that waited for a sweep, which recorded it.
      new LinksExpiredError('the file links Jumdata was paid for are gone'),
    ],
    [`GET ${FILE_LINK}`]: [...anyRoute, new ForbiddenError('bad signature'), new NotFoundError('not mirrored')],
    'GET /jobs': anyRoute,
  };

  it.each(Object.entries(errorsByRoute))('describe every error %s answers, and only those', (route, errors) => {
    const answers = errors.map((error) => toErrorResponse(error));
    for (const answer of answers) expectDocumented(route, answer);
    const documentedErrors = Object.keys(operationOf(route).responses).filter((status) => Number(status) >= 400);
    expect([...new Set(answers.map((answer) => String(answer.statusCode)))].sort()).toEqual(documentedErrors.sort());
  });
});
