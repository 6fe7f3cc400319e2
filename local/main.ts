import { FW199_SANDBOX_ORDERS } from './sandboxes/fw199.ts';
import { startLocalMode } from './server.ts';

/** `npm start`: local mode in the foreground, with a ready line and examples to paste. */

const local = await startLocalMode();
const sandboxNote = local.sandboxes.fw199
  ? `fw199 sandbox at ${local.sandboxes.fw199.url}`
  : `fw199 at ${process.env.FW199_BASE_URL}`;

const retry = (orderNo: string) =>
  `curl -s -X POST ${local.url}/retry -H 'content-type: application/json' ` +
  `-d '{"taxNum":"91310117568051222X","orderNo":"${orderNo}"}'`;

console.log(`einvoice-bridge local mode ready on ${local.url} (${sandboxNote})
No IAM authorization in local mode: on AWS every route needs a SigV4-signed call.

Try it:
  ${retry('20240122150518179381')}   # 202 retrying
  ${retry(FW199_SANDBOX_ORDERS.issued)}   # 200 issued
  ${retry(FW199_SANDBOX_ORDERS.inProgress)}   # 202 in_progress
  ${retry(FW199_SANDBOX_ORDERS.loginRequired)}   # 422 upstream rejected
  curl -s -X POST ${local.url}/retry -H 'content-type: application/json' -d '{"taxNum":"123","orderNo":""}'   # 400

Ctrl-C stops it.`);

const stop = async () => {
  await local.close();
  process.exit(0);
};
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
