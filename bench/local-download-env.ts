import { DOWNLOAD_NODE_OPTIONS } from '../functions/download/runtime-options.ts';
import { LOCAL_S3_CREDENTIALS } from '../local/s3.ts';

/**
 * The download function's environment as local mode gives it, for the benches that run its code in a process of
 * their own: the embedded S3 (its keys, no checksums, which it cannot take) and DynamoDB, a secrets file, no Object
 * Lock, and the deployed function's NODE_OPTIONS. Each bench adds what it needs (Jumdata, file limits).
 */
export function localDownloadEnv(local: { s3Endpoint: string; dynamoEndpoint: string; secretsFile: string; bucket: string; jobsTable: string }) {
  return {
    PATH: process.env.PATH,
    AWS_REGION: 'cn-north-1',
    AWS_ACCESS_KEY_ID: LOCAL_S3_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: LOCAL_S3_CREDENTIALS.secretAccessKey,
    POWERTOOLS_LOG_LEVEL: 'ERROR',
    LOCAL_SECRETS_FILE: local.secretsFile,
    BUCKET_NAME: local.bucket,
    S3_ENDPOINT: local.s3Endpoint,
    S3_CHECKSUMS: 'off',
    JOBS_TABLE: local.jobsTable,
    INVOICES_TABLE: 'invoices',
    AWS_ENDPOINT_URL_DYNAMODB: local.dynamoEndpoint,
    // Nothing is fetched from Jumdata unless a bench says where it is.
    JUMDATA_BASE_URL: 'http://127.0.0.1:9',
    PUBLIC_BASE_URL: 'http://127.0.0.1:3000',
    NODE_OPTIONS: DOWNLOAD_NODE_OPTIONS,
  };
}
