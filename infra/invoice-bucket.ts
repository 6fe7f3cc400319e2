import { Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import { Effect, PolicyStatement, type IGrantable } from 'aws-cdk-lib/aws-iam';
import { BlockPublicAccess, Bucket, BucketEncryption, ObjectOwnership } from 'aws-cdk-lib/aws-s3';
import type { Construct } from 'constructs';
import { FINISHED_WORK_TAG } from '../functions/download/archive.ts';

/**
 * The archive: the invoices' files and records (invoices/) and unfinished downloads (work/download/). Private,
 * TLS only, encrypted, versioned (an overwritten or deleted invoice file can be recovered), with its own access log.
 */
export function invoiceBucket(scope: Construct): Bucket {
  const accessLogs = new Bucket(scope, 'ArchiveAccessLogs', {
    blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
    enforceSSL: true,
    encryption: BucketEncryption.S3_MANAGED,
    objectOwnership: ObjectOwnership.BUCKET_OWNER_ENFORCED,
    removalPolicy: RemovalPolicy.RETAIN,
    lifecycleRules: [{ expiration: Duration.days(365) }],
  });
  Validations.of(accessLogs).acknowledge({
    id: 'AwsSolutions-S1',
    reason: 'This bucket receives the archive bucket\'s access logs; logging its own access would recurse.',
  });
  return new Bucket(scope, 'Archive', {
    blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
    enforceSSL: true,
    encryption: BucketEncryption.S3_MANAGED,
    objectOwnership: ObjectOwnership.BUCKET_OWNER_ENFORCED,
    versioned: true,
    serverAccessLogsBucket: accessLogs,
    serverAccessLogsPrefix: 'archive/',
    // Invoices must be kept for years: the bucket outlives the stack.
    removalPolicy: RemovalPolicy.RETAIN,
    lifecycleRules: [
      // A function that died mid-upload leaves parts that cost money and are never completed.
      { id: 'abort-incomplete-uploads', abortIncompleteMultipartUploadAfter: Duration.days(1) },
      // A finished download's work record (tagged done by the function) is needed only against a late claimant.
      { id: 'expire-finished-work-records', prefix: 'work/', tagFilters: FINISHED_WORK_TAG, expiration: Duration.days(1) },
      // Old versions of work records, and the delete markers the rule above leaves, need not be kept.
      {
        id: 'expire-old-work-records',
        prefix: 'work/',
        noncurrentVersionExpiration: Duration.days(30),
        expiredObjectDeleteMarker: true,
      },
    ],
  });
}

/** Exactly the object actions the download function uses, on the prefixes it uses. */
export function grantInvoiceArchive(bucket: Bucket, grantee: IGrantable): void {
  const objects = (prefix: string) => `${bucket.bucketArn}/${prefix}*`;
  const statements = [
    // Reading a key that does not exist answers 404 only with ListBucket; without it S3 says 403.
    new PolicyStatement({ effect: Effect.ALLOW, actions: ['s3:ListBucket'], resources: [bucket.bucketArn] }),
    new PolicyStatement({
      effect: Effect.ALLOW,
      actions: ['s3:GetObject', 's3:PutObject'],
      resources: [objects('invoices/'), objects('work/download/')],
    }),
    // Removing the objects of a failed attempt for good, and the parts of an aborted multipart upload.
    new PolicyStatement({
      effect: Effect.ALLOW,
      actions: ['s3:DeleteObject', 's3:DeleteObjectVersion', 's3:AbortMultipartUpload'],
      resources: [objects('invoices/')],
    }),
    // A finished work record is written with a tag, which S3 authorises as tagging.
    new PolicyStatement({ effect: Effect.ALLOW, actions: ['s3:PutObjectTagging'], resources: [objects('work/download/')] }),
  ];
  for (const statement of statements) grantee.grantPrincipal.addToPrincipalPolicy(statement);
  const stack = Stack.of(bucket);
  const arn = stack.getLogicalId(bucket.node.defaultChild as never);
  for (const prefix of ['invoices/', 'work/download/']) {
    Validations.of(grantee.grantPrincipal as unknown as Construct).acknowledge({
      id: `AwsSolutions-IAM5[Resource::<${arn}.Arn>/${prefix}*]`,
      reason: `Object access is limited to the ${prefix} prefix, whose keys are made per invoice.`,
    });
  }
}
