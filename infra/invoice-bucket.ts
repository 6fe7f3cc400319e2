import { Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import { Effect, PolicyStatement, type IGrantable } from 'aws-cdk-lib/aws-iam';
import { BlockPublicAccess, Bucket, BucketEncryption, ObjectOwnership } from 'aws-cdk-lib/aws-s3';
import type { Construct } from 'constructs';

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
      // Finished work records are deleted; their old versions and the delete markers left need not be kept.
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
      actions: ['s3:GetObject', 's3:PutObject', 's3:DeleteObject'],
      resources: [objects('invoices/'), objects('work/download/')],
    }),
    // Removing the objects of a failed attempt for good, and the parts of an aborted multipart upload.
    new PolicyStatement({
      effect: Effect.ALLOW,
      actions: ['s3:DeleteObjectVersion', 's3:AbortMultipartUpload'],
      resources: [objects('invoices/')],
    }),
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
