import { describe, expect, it } from 'vitest';
import { rebillingForm, signFw199 } from '#shared/providers/fw199';

// Vectors F1-F3, computed with the vendor's own SDK.
const appSecret = 'testsecret';
const f1 = {
  appid: 'testappid',
  timestamp: '1705907118',
  tax_num: '339901999999142',
  request_data: '{"orderno":"20240122150518179381"}',
};

describe('fw199 signing', () => {
  it('reproduces vector F1', () => {
    expect(signFw199(f1, appSecret)).toBe('b3f1265ad55d02da35c4189001254a97');
  });

  it('reproduces vector F2 (public fields only)', () => {
    expect(signFw199({ appid: 'testappid', timestamp: '1705907118' }, appSecret)).toBe(
      'e3f089c4ad40855fd29b60b4ccf0912a',
    );
  });

  it('reproduces vector F3 (Chinese text, and an empty field signed as its bare key)', () => {
    const f3 = { ...f1, request_data: '{"orderno":"测试20240122"}', extra: '' };
    expect(signFw199(f3, appSecret)).toBe('91454866f850309dd40d2cc096a0f3bc');
  });

  it('ignores an existing sign field and the order the keys come in', () => {
    const shuffled = { timestamp: f1.timestamp, request_data: f1.request_data, appid: f1.appid, tax_num: f1.tax_num };
    expect(signFw199({ ...shuffled, sign: 'anything' }, appSecret)).toBe('b3f1265ad55d02da35c4189001254a97');
  });

  it('builds the rebilling form whose request_data is the very string that was signed', () => {
    // Act
    const form = rebillingForm(
      { taxNum: '339901999999142', orderNo: '20240122150518179381' },
      { appId: 'testappid', appSecret },
      1705907118,
    );
    // Assess
    expect(form).toEqual({ ...f1, sign: 'b3f1265ad55d02da35c4189001254a97' });
  });
});
