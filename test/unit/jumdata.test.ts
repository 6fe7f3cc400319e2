import { describe, expect, it, vi } from 'vitest';
import {
  toErrorResponse,
  UpstreamRateLimitedError,
  UpstreamRejectedError,
  UpstreamTemporaryError,
  UpstreamUnavailableError,
} from '#shared/errors';
import { logger } from '#shared/logger';
import {
  downloadForm,
  interpretDownloadAnswer,
  invoiceSummary,
  JUMDATA_CODES,
  signJumdata,
  TaxBureauLoginRequiredError,
} from '#shared/providers/jumdata';

const taxNum = '91310117568051222X';
const success = {
  code: 200,
  msg: '成功',
  taskNo: '457509372194972206195475',
  charge: true,
  data: {
    xmlFile: 'https://files.example/x.zip',
    ofdFile: 'https://files.example/o.zip',
    pdfFile: 'https://files.example/p.PDF',
    Sfzf: '未作废',
    Sfch: '未冲红',
    SfchDm: 'N',
    Gmfnsrsbh: '91330110MAC6123456',
    Kprq: '2024-04-25 15:58:41',
  },
};

const failureOf = (code: number) => {
  try {
    interpretDownloadAnswer({ code, msg: `message ${code}`, taskNo: 't', charge: false }, taxNum);
  } catch (error) {
    return error;
  }
  throw new Error('expected a failure');
};

describe('Jumdata signing and form', () => {
  it('reproduces vector J1', () => {
    expect(signJumdata('xyzxy2121zxyz', 'efcefcef1121cefcefc1212121', '1555378976238')).toBe(
      '6ddcdc405743c576cb6d34b17b47ed56e2b9b6670fae1fe85ed01244fd31558b',
    );
  });

  it('builds the form with a millisecond timestamp, the signature, and jxxbz 2 for sales', () => {
    const form = downloadForm(
      { taxNum, invoiceNo: '24312000000022669098', issueDate: '2024-04-25', direction: 'sales' },
      { appId: 'xyzxy2121zxyz', appSecret: 'efcefcef1121cefcefc1212121' },
      1555378976238,
    );
    expect(form).toEqual({
      appId: 'xyzxy2121zxyz',
      timestamp: '1555378976238',
      sign: '6ddcdc405743c576cb6d34b17b47ed56e2b9b6670fae1fe85ed01244fd31558b',
      nsrsbh: taxNum,
      fphm: '24312000000022669098',
      kprq: '2024-04-25',
      jxxbz: '2',
    });
  });

  it('sends jxxbz 1 for purchase invoices', () => {
    const form = downloadForm({ taxNum, invoiceNo: '12345678', issueDate: '2024-04-25', direction: 'purchase' }, { appId: 'a', appSecret: 's' }, 1);
    expect(form.jxxbz).toBe('1');
  });
});

describe('the Jumdata code table', () => {
  it('reads 200 as the three file links and the invoice fields', () => {
    const invoice = interpretDownloadAnswer(success, taxNum);
    expect(invoice).toEqual({
      taskNo: '457509372194972206195475',
      charged: true,
      files: { pdf: 'https://files.example/p.PDF', ofd: 'https://files.example/o.zip', xml: 'https://files.example/x.zip' },
      fields: { Sfzf: '未作废', Sfch: '未冲红', SfchDm: 'N', Gmfnsrsbh: '91330110MAC6123456', Kprq: '2024-04-25 15:58:41' },
    });
  });

  it('logs the charge flag with the task number of every answer', () => {
    const info = vi.spyOn(logger, 'info');
    interpretDownloadAnswer(success, taxNum);
    failureOf(603);
    expect(info).toHaveBeenCalledWith('jumdata answered', { jumdataCode: 200, taskNo: '457509372194972206195475', charged: true });
    expect(info).toHaveBeenCalledWith('jumdata answered', { jumdataCode: 603, taskNo: 't', charged: false });
    info.mockRestore();
  });

  it('answers 301 with 422 and a message that says a tax-bureau login is needed', () => {
    const error = failureOf(301);
    expect(error).toBeInstanceOf(TaxBureauLoginRequiredError);
    expect(toErrorResponse(error)).toMatchObject({
      statusCode: 422,
      body: { error: { code: 'UPSTREAM_REJECTED', message: expect.stringContaining('tax bureau login'), upstream: { code: 301 } } },
    });
  });

  it.each([399, 500, 501, 610])('treats %i as temporary: 503 with Retry-After', (code) => {
    const error = failureOf(code);
    expect(error).toBeInstanceOf(UpstreamTemporaryError);
    expect(toErrorResponse(error)).toMatchObject({ statusCode: 503, headers: { 'retry-after': '60' } });
  });

  it.each([606, 609])('treats %i as a rate limit: 422 UPSTREAM_RATE_LIMITED with Retry-After', (code) => {
    const error = failureOf(code);
    expect(error).toBeInstanceOf(UpstreamRateLimitedError);
    expect(toErrorResponse(error)).toMatchObject({ statusCode: 422, headers: { 'retry-after': '60' }, body: { error: { code: 'UPSTREAM_RATE_LIMITED' } } });
  });

  it.each([400, 601, 602, 603, 604, 607, 999, 12345])('treats %i as terminal: 422 with the code and message', (code) => {
    const error = failureOf(code);
    expect(error).toBeInstanceOf(UpstreamRejectedError);
    expect(error).not.toBeInstanceOf(UpstreamTemporaryError);
    expect(error).not.toBeInstanceOf(UpstreamRateLimitedError);
    expect(toErrorResponse(error).body.error.upstream).toEqual({ provider: 'jumdata', code, message: `message ${code}` });
  });

  it('knows every documented code', () => {
    expect(Object.keys(JUMDATA_CODES).map(Number)).toEqual([200, 301, 399, 400, 500, 501, 601, 602, 603, 604, 606, 607, 609, 610, 999]);
  });

  it('treats a 200 without the file links as unreadable', () => {
    expect(() => interpretDownloadAnswer({ ...success, data: { pdfFile: 'x' } }, taxNum)).toThrow(UpstreamUnavailableError);
  });
});

describe('the invoice summary', () => {
  it('reads 是否作废 and 是否冲红 as text or Y/N codes', () => {
    expect(invoiceSummary(success.data)).toEqual({ voided: false, redFlushed: false, buyerTaxNum: '91330110MAC6123456' });
    expect(invoiceSummary({ Sfzf: '已作废', SfchDm: 'Y' })).toEqual({ voided: true, redFlushed: true, buyerTaxNum: undefined });
  });
});
