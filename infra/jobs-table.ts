import { RemovalPolicy } from 'aws-cdk-lib';
import { AttributeType, Billing, TableEncryptionV2, TableV2 } from 'aws-cdk-lib/aws-dynamodb';
import { Effect, PolicyStatement, type IGrantable } from 'aws-cdk-lib/aws-iam';
import type { Construct } from 'constructs';
import { JOBS_INDEX, type JobFunction } from '../shared/jobs.ts';

/**
 * The jobs table (shared/jobs.ts): one record per running, unfinished or failed job of the three functions, and
 * the index the sweeps and GET /jobs read ("which jobs of this function are due?"). Done records expire by TTL.
 */
export function jobsTable(scope: Construct): TableV2 {
  return new TableV2(scope, 'Jobs', {
    partitionKey: { name: 'pk', type: AttributeType.STRING },
    billing: Billing.onDemand(),
    encryption: TableEncryptionV2.awsManagedKey(),
    pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
    timeToLiveAttribute: 'expiresAt',
    // Unfinished work must survive the stack: it holds paid-for Jumdata answers.
    removalPolicy: RemovalPolicy.RETAIN,
    globalSecondaryIndexes: [
      {
        indexName: JOBS_INDEX,
        partitionKey: { name: 'queue', type: AttributeType.STRING },
        sortKey: { name: 'dueAt', type: AttributeType.STRING },
      },
    ],
  });
}

/**
 * A function may read and write only its own jobs: items whose key (and index key) starts with its name.
 * `readAll` adds reading every function's queues through the index (GET /jobs), never writing them.
 */
export function grantJobs(table: TableV2, grantee: IGrantable, fn: JobFunction, options: { readAll?: boolean; recordOnly?: boolean } = {}): void {
  const index = `${table.tableArn}/index/${JOBS_INDEX}`;
  // `recordOnly`: another function's jobs, read and recorded (the download records erp-update's chained updates).
  const actions = options.recordOnly ? ['dynamodb:GetItem', 'dynamodb:PutItem'] : ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:Query'];
  grantee.grantPrincipal.addToPrincipalPolicy(
    new PolicyStatement({
      effect: Effect.ALLOW,
      actions,
      resources: options.recordOnly ? [table.tableArn] : [table.tableArn, index],
      conditions: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': [`${fn}#*`] } },
    }),
  );
  if (options.readAll) {
    grantee.grantPrincipal.addToPrincipalPolicy(
      new PolicyStatement({ effect: Effect.ALLOW, actions: ['dynamodb:Query'], resources: [index] }),
    );
  }
}
