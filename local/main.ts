import { FW199_SANDBOX_ORDERS } from './sandboxes/fw199.ts';
import { JUMDATA_SANDBOX_INVOICES } from './sandboxes/jumdata.ts';
import { WDT_SANDBOX_INVOICES } from './sandboxes/wdt.ts';
import { LOCAL_S3_CREDENTIALS } from './s3.ts';
import { startLocalMode } from './server.ts';

/** `npm start`: local mode in the foreground, with a ready line and examples to paste. */

const local = await startLocalMode({
  // What the same requests would cost against Jumdata: one line per call the sandbox bills.
  jumdata: {
    onBilledCall: ({ billedCalls, invoiceNo }) => console.log(`jumdata sandbox: billed call ${billedCalls} (invoice ${invoiceNo})`),
  },
});
const providers = [
  local.sandboxes.fw199 ? `fw199 sandbox ${local.sandboxes.fw199.url}` : `fw199 ${process.env.FW199_BASE_URL}`,
  local.sandboxes.wdt ? `WDT sandbox ${local.sandboxes.wdt.url}` : `WDT ${process.env.WDT_BASE_URL}`,
  local.sandboxes.jumdata ? `Jumdata sandbox ${local.sandboxes.jumdata.url}` : `Jumdata ${process.env.JUMDATA_BASE_URL}`,
  // Any S3 client can look into the embedded S3 with these (the aws CLI: --endpoint-url, and the key as credentials).
  local.s3
    ? `S3 ${local.s3.endpoint} bucket ${local.bucket} key ${LOCAL_S3_CREDENTIALS.accessKeyId} secret ${LOCAL_S3_CREDENTIALS.secretAccessKey} (data in ${local.stateDir}/s3)`
    : `S3 ${process.env.S3_ENDPOINT} bucket ${local.bucket}`,
];

const post = (path: string, body: object) =>
  `curl -s -X POST ${local.url}${path} -H 'content-type: application/json' -d '${JSON.stringify(body)}'`;
const taxNum = '91310117568051222X';

console.log(`einvoice-bridge local mode ready on ${local.url} (${providers.join(', ')})
No IAM authorization in local mode: on AWS every route needs a SigV4-signed call.

Try it:
  ${post('/retry', { taxNum, orderNo: '20240122150518179381' })}   # 202 retrying
  ${post('/retry', { taxNum, orderNo: FW199_SANDBOX_ORDERS.issued })}   # 200 issued
  ${post('/retry', { taxNum, orderNo: FW199_SANDBOX_ORDERS.inProgress })}   # 202 in_progress
  ${post('/retry', { taxNum, orderNo: FW199_SANDBOX_ORDERS.loginRequired })}   # 422 upstream rejected
  ${post('/retry', { taxNum: '123', orderNo: '' })}   # 400
  ${post('/erp-update', { invoiceNo: WDT_SANDBOX_INVOICES.known[0], status: 80, invoiceNoOut: '24312000000022669098', invoiceCode: '', filePath: 'https://example.com/fp/24312000000022669098.pdf' })}   # 200
  ${post('/erp-update', { invoiceNo: WDT_SANDBOX_INVOICES.known[1], status: 75, errorInfo: '购方税号错误' })}   # 200
  ${post('/erp-update', { invoiceNo: 'DZ-UNKNOWN', status: 75, errorInfo: 'x' })}   # 422 (WDT code 30000)
  ${post('/download', { taxNum, invoiceNo: '24312000000022669098', issueDate: '2024-04-25', direction: 'sales' })}   # 200, then fromCache
  ${post('/download', { taxNum, invoiceNo: '24312000000000000301', issueDate: '2024-04-25', direction: 'sales' })}   # 422 (tax-bureau login)
  ${post('/download', { taxNum, invoiceNo: JUMDATA_SANDBOX_INVOICES.slowOnceFile, issueDate: '2024-04-25', direction: 'sales' })}   # the pdf trickles 10 s the first time ever: stop local mode meanwhile, start it, ask again: 200 with no second billed call
  ${post('/download', { taxNum, invoiceNo: '24312000000077770101', issueDate: '2024-04-25', direction: 'sales', erp: { invoiceNo: 'FP202401220001', file: 'pdf' } })}   # mirrored, and the WDT sandbox told (erp.status pending, then sent)
  Then open a "link" from a download answer in a browser: 302 to the file in the local S3.
  ${post('/retry', { taxNum, orderNo: FW199_SANDBOX_ORDERS.serverError })}   # 502, kept pending for the sweep
  curl -s '${local.url}/jobs?state=pending'   # unfinished jobs, with their last error
  curl -s '${local.url}/jobs?state=failed'    # jobs that will not be tried again
  curl -s '${local.url}/invoices?taxNum=${taxNum}&from=2024-04-01&to=2024-04-30'   # the archive: April's mirrored invoices
  curl -s -L -o ledger.csv '${local.url}/invoices/ledger?taxNum=${taxNum}&from=2024-04-01&to=2024-04-30&direction=sales'   # the 销项 台账 (format=xlsx for a spreadsheet)
  ${post('/audits', {})}   # the integrity audit: change a file with any S3 client (the keys above) and see it reported
  curl -s '${local.url}/audits/latest'   # the last audit's report

State is kept in ${local.stateDir} (LOCAL_STATE_DIR), the sandboxes' and storage's ports too (ports.json), so that a
restart finishes what was cut off with the links it already paid for.
${local.sandboxes.jumdata ? 'Each call the Jumdata sandbox bills is printed as "jumdata sandbox: billed call N (invoice X)".\n' : ''}Sweeps of unfinished jobs run every ${process.env.LOCAL_SWEEP_SECONDS ?? 60} s (LOCAL_SWEEP_SECONDS; 0 turns them off), as the stack's schedules do on AWS.

Ctrl-C stops it.`);

const stop = async () => {
  await local.close();
  process.exit(0);
};
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
