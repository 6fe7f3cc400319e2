import { Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import { Effect, PolicyStatement, type IGrantable } from 'aws-cdk-lib/aws-iam';
import { BlockPublicAccess, Bucket, BucketEncryption, ObjectOwnership, StorageClass } from 'aws-cdk-lib/aws-s3';
import type { Construct } from 'constructs';
import type { StackConfig } from './config.ts';

/**
 * The archive: the invoices' files and their records (invoices/). Private,
 * TLS only, encrypted, versioned (an overwritten or deleted invoice file can be recovered), with its own access log.
 */
export function invoiceBucket(scope: Construct, archive: StackConfig['archive']): Bucket {
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
    // On from the start, so that configuring objectLockYears later does not replace the bucket (CloudFormation
    // replaces a bucket whose ObjectLockEnabled changes, leaving the old one and every invoice in it behind). Without a
    // default retention it locks nothing by itself: with objectLockYears the download function locks each invoice's
    // objects once all are stored, so that the objects of an attempt that failed half way can still be removed.
    // Off only for a stack deployed before it was on (archive.bucketObjectLock: false), for the same reason.
    objectLockEnabled: archive.bucketObjectLock ? true : undefined,
    lifecycleRules: [
      // A function that died mid-upload leaves parts that cost money and are never completed.
      { id: 'abort-incomplete-uploads', abortIncompleteMultipartUploadAfter: Duration.days(1) },
      // Mirrored invoices are kept for years and rarely read: cheaper classes that still open at once through a
      // presigned link (Glacier Instant Retrieval, not Flexible Retrieval, which would need a restore first).
      {
        id: 'invoices-to-cheaper-storage',
        prefix: 'invoices/',
        transitions: [
          { storageClass: StorageClass.INFREQUENT_ACCESS, transitionAfter: Duration.days(archive.filesToInfrequentAccessDays) },
          { storageClass: StorageClass.GLACIER_INSTANT_RETRIEVAL, transitionAfter: Duration.days(archive.filesToGlacierDays) },
        ],
        noncurrentVersionTransitions: [
          { storageClass: StorageClass.GLACIER_INSTANT_RETRIEVAL, transitionAfter: Duration.days(archive.oldVersionsToGlacierDays) },
        ],
      },
    ],
  });
}

/** Exactly the object actions the download function uses, on the prefixes it uses. */
export function grantInvoiceArchive(bucket: Bucket, grantee: IGrantable, options: { objectLock: boolean }): void {
  const objects = (prefix: string) => `${bucket.bucketArn}/${prefix}*`;
  const statements = [
    // Reading a key that does not exist answers 404 only with ListBucket; without it S3 says 403.
    new PolicyStatement({ effect: Effect.ALLOW, actions: ['s3:ListBucket'], resources: [bucket.bucketArn] }),
    // Reading and writing the files and invoice.json; removing the objects of a failed attempt for good (by version:
    // the bucket is versioned, and the function never deletes without one, so no s3:DeleteObject), and the parts of
    // an aborted multipart upload.
    new PolicyStatement({
      effect: Effect.ALLOW,
      actions: ['s3:GetObject', 's3:PutObject', 's3:DeleteObjectVersion', 's3:AbortMultipartUpload'],
      resources: [objects('invoices/')],
    }),
    // Writing 台账 ledgers (multipart), reading them back through presigned URLs, and removing an aborted one.
    new PolicyStatement({
      effect: Effect.ALLOW,
      actions: ['s3:GetObject', 's3:PutObject', 's3:DeleteObjectVersion', 's3:AbortMultipartUpload'],
      resources: [objects('ledgers/')],
    }),
    // The audit: a file's recorded version (HeadObject with a version id), and its lock (HeadObject says it only to
    // a reader of retention).
    new PolicyStatement({ effect: Effect.ALLOW, actions: ['s3:GetObjectVersion', 's3:GetObjectRetention'], resources: [objects('invoices/')] }),
    // The audit's reports.
    new PolicyStatement({ effect: Effect.ALLOW, actions: ['s3:GetObject', 's3:PutObject'], resources: [objects('audits/')] }),
    // Locking a completely mirrored invoice's objects (Object Lock, compliance mode), when the bucket has it; the
    // audit extends a lock shorter than the rule.
    ...(options.objectLock
      ? [new PolicyStatement({ effect: Effect.ALLOW, actions: ['s3:PutObjectRetention'], resources: [objects('invoices/')] })]
      : []),
  ];
  for (const statement of statements) grantee.grantPrincipal.addToPrincipalPolicy(statement);
  const stack = Stack.of(bucket);
  const arn = stack.getLogicalId(bucket.node.defaultChild as never);
  Validations.of(grantee.grantPrincipal as unknown as Construct).acknowledge(
    {
      id: `AwsSolutions-IAM5[Resource::<${arn}.Arn>/invoices/*]`,
      reason: 'Object access is limited to the invoices/ prefix, whose keys are made per invoice.',
    },
    {
      id: `AwsSolutions-IAM5[Resource::<${arn}.Arn>/ledgers/*]`,
      reason: 'Ledger access is limited to the ledgers/ prefix, whose keys are made per ledger written.',
    },
    {
      id: `AwsSolutions-IAM5[Resource::<${arn}.Arn>/audits/*]`,
      reason: 'Audit reports are limited to the audits/ prefix, whose keys are made per audit run.',
    },
  );
}
