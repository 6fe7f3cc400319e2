import { describe, expect, it } from 'vitest';
import { invoiceUpdateForm, replaceNonBmp, signWdt, wdtSigningText } from '#shared/providers/wdt';

// W1 and W2, computed with WDT's own SDK.
const appSecret = '12345';
const publicFields = { sid: 'apidevnew2', appkey: 'test2-xx', timestamp: '1705907118' };
const w1 = {
  ...publicFields,
  invoice_no: 'FP202401220001',
  status: '80',
  invoice_no_out: '24332000000012345678',
  invoice_code: '033002300111',
  file_path: 'https://example.com/fp/24332000000012345678.pdf',
};
const w2 = { ...publicFields, invoice_no: 'FP202401220001', status: '75', invoice_code: '', error_info: '购方税号错误' };
/**
 * W3, our own: a long Chinese error_info (with a `;` in it) and a file_path holding `&`, `=`, `+` and
 * percent-escapes. Computed outside this code base, with a Python transcription of the PHP SDK's packData
 * (sorted keys, '%02d-%s:%04d-%s' % (len(k), k, len(v), v) joined by ';', appsecret appended, md5), which
 * reproduces W1 and W2 too.
 */
const w3 = {
  ...publicFields,
  invoice_no: 'FP202401220003',
  status: '80',
  invoice_no_out: '24332000000012345679',
  invoice_code: '',
  error_info:
    '开票失败:购买方纳税人识别号与名称不匹配,请核对购方税号、名称、地址电话及开户行账号后重新提交开票申请;若信息无误,请联系税务机关确认购方登记状态。',
  file_path: 'https://example.com/fp/download?id=24332000000012345678&sig=a+b==&name=%E5%8F%91%E7%A5%A8.pdf',
};

describe('WDT signing', () => {
  it('reproduces vector W1, and its string to hash', () => {
    expect(wdtSigningText(w1, appSecret)).toBe(
      '06-appkey:0008-test2-xx;09-file_path:0047-https://example.com/fp/24332000000012345678.pdf;' +
        '12-invoice_code:0012-033002300111;10-invoice_no:0014-FP202401220001;' +
        '14-invoice_no_out:0020-24332000000012345678;03-sid:0010-apidevnew2;06-status:0002-80;' +
        '09-timestamp:0010-170590711812345',
    );
    expect(signWdt(w1, appSecret)).toBe('67503fec97751dcfeaf520fd32b2e2a0');
  });

  it('reproduces vector W2: Chinese lengths in characters, an empty invoice_code signed as length 0000', () => {
    expect(wdtSigningText(w2, appSecret)).toContain('10-error_info:0006-购方税号错误;12-invoice_code:0000-;');
    expect(signWdt(w2, appSecret)).toBe('ebf7b0226956be3997de2689a31037f9');
  });

  it('reproduces our own vector W3: long Chinese text and a URL with & = + in it', () => {
    expect(wdtSigningText(w3, appSecret)).toContain('10-error_info:0074-开票失败:');
    expect(wdtSigningText(w3, appSecret)).toContain('09-file_path:0093-https://');
    expect(signWdt(w3, appSecret)).toBe('291ccaea0b5862554b54341bba6b0db4');
  });

  it('does not truncate a length of 10000 or more, as %04d does not', () => {
    expect(wdtSigningText({ k: 'x'.repeat(10_000) }, '')).toBe(`01-k:10000-${'x'.repeat(10_000)}`);
  });

  it('counts a character outside the BMP as one, as the PHP SDK does', () => {
    expect(wdtSigningText({ error_info: 'a😀' }, '')).toBe('10-error_info:0002-a😀');
  });
});

describe('the invoice update form', () => {
  const secret = { sid: 'apidevnew2', appKey: 'test2-xx', appSecret };

  it('builds W1 from an invoicing success', () => {
    const form = invoiceUpdateForm(
      {
        invoiceNo: 'FP202401220001',
        status: 80,
        invoiceNoOut: '24332000000012345678',
        invoiceCode: '033002300111',
        filePath: 'https://example.com/fp/24332000000012345678.pdf',
      },
      secret,
      1705907118,
    );
    expect(form).toEqual({ ...w1, sign: '67503fec97751dcfeaf520fd32b2e2a0' });
  });

  it('builds W2 from a failure: the empty invoice_code is sent, empty optional fields are left out', () => {
    const form = invoiceUpdateForm(
      { invoiceNo: 'FP202401220001', status: 75, invoiceCode: '', errorInfo: '购方税号错误', filePath: '', invoiceNoOut: '' },
      secret,
      1705907118,
    );
    expect(form).toEqual({ ...w2, sign: 'ebf7b0226956be3997de2689a31037f9' });
  });

  it('encodes & = + in file_path so that they reach WDT as sent', () => {
    const form = invoiceUpdateForm(
      {
        invoiceNo: w3.invoice_no,
        status: 80,
        invoiceNoOut: w3.invoice_no_out,
        invoiceCode: '',
        errorInfo: w3.error_info,
        filePath: w3.file_path,
      },
      secret,
      1705907118,
    );
    expect(form.sign).toBe('291ccaea0b5862554b54341bba6b0db4');
    const body = new URLSearchParams(form).toString();
    expect(body).toContain('file_path=https%3A%2F%2Fexample.com%2Ffp%2Fdownload%3Fid%3D24332000000012345678%26sig%3Da%2Bb%3D%3D%26name%3D%25E5%258F%2591%25E7%25A5%25A8.pdf');
    expect(Object.fromEntries(new URLSearchParams(body))).toEqual(form);
  });

  it('replaces emoji in error_info with U+FFFD and signs the text it sends', () => {
    const form = invoiceUpdateForm(
      { invoiceNo: 'FP202401220001', status: 75, invoiceCode: '', errorInfo: '税号错误😀𠀀!' },
      secret,
      1705907118,
    );
    expect(form.error_info).toBe('税号错误\uFFFD\uFFFD!');
    const { sign, ...signed } = form;
    expect(sign).toBe(signWdt(signed, appSecret));
  });

  it('keeps every BMP character, Chinese punctuation included', () => {
    expect(replaceNonBmp('发票(电子)—「测试」;€')).toBe('发票(电子)—「测试」;€');
  });
});
