import { describe, expect, it } from 'vitest';
import { UpstreamRejectedError, UpstreamUnavailableError } from '#shared/errors';
import { interpretRebillingAnswer } from '#shared/providers/fw199';

describe('fw199 rebilling answers', () => {
  it('reads code 0 as a retry that was accepted', () => {
    expect(interpretRebillingAnswer({ code: 0, message: '重试成功' })).toEqual({
      status: 'retrying',
      message: '重试成功',
    });
  });

  it('reads code 100 as already issued, keeping the invoice number and pdf link', () => {
    const answer = {
      code: 100,
      invoice_down_url: 'https://inv.example/fp.pdf',
      invoice_no: '24312000000022669098',
      message: '发票已经生成,不需要重复提交',
    };
    expect(interpretRebillingAnswer(answer)).toEqual({
      status: 'issued',
      message: '发票已经生成,不需要重复提交',
      invoiceNo: '24312000000022669098',
      pdfUrl: 'https://inv.example/fp.pdf',
    });
  });

  it('reads a non-zero code whose message says 开票中 as in progress', () => {
    expect(interpretRebillingAnswer({ code: 7, message: '开票中(重试中),请耐心等待开票结果' })).toEqual({
      status: 'in_progress',
      message: '开票中(重试中),请耐心等待开票结果',
    });
  });

  it('rejects any other code with the gateway code and message', () => {
    const act = () => interpretRebillingAnswer({ code: 9001, message: '本次操作需登录电子发票服务平台' });
    expect(act).toThrow(UpstreamRejectedError);
    expect(act).toThrow(expect.objectContaining({ provider: 'fw199', upstreamCode: 9001, upstreamMessage: '本次操作需登录电子发票服务平台' }));
  });

  it.each([
    ['a body without a code', { message: 'ok' }],
    ['a string code', { code: '0', message: 'ok' }],
    ['a JSON array', [1, 2]],
    ['null', null],
    ['code 100 without the invoice number', { code: 100, message: 'x', invoice_down_url: 'https://x' }],
  ])('treats %s as an unreadable answer', (_name, body) => {
    expect(() => interpretRebillingAnswer(body)).toThrow(UpstreamUnavailableError);
  });
});
