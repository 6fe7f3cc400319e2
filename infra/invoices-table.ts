import { RemovalPolicy } from 'aws-cdk-lib';
import { AttributeType, Billing, TableEncryptionV2, TableV2 } from 'aws-cdk-lib/aws-dynamodb';
import { Effect, PolicyStatement, type IGrantable } from 'aws-cdk-lib/aws-iam';
import type { Construct } from 'constructs';
import { INVOICES_BY_DATE } from '../functions/download/invoice-index.ts';
import { ERP_TOLD_ATTRIBUTE } from '../shared/invoice-erp.ts';

/**
 * The archive's index (functions/download/invoice-index.ts): one entry per mirrored invoice, by (taxNum, invoiceNo),
 * and the `byIssueDate` index GET /invoices and the ledger read. Kept for good, like the invoices it indexes.
 */
export function invoicesTable(scope: Construct): TableV2 {
  return new TableV2(scope, 'Invoices', {
    partitionKey: { name: 'pk', type: AttributeType.STRING },
    billing: Billing.onDemand(),
    encryption: TableEncryptionV2.awsManagedKey(),
    pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
    // The index of legal originals kept for 30 years must outlive the stack.
    removalPolicy: RemovalPolicy.RETAIN,
    deletionProtection: true,
    globalSecondaryIndexes: [
      {
        indexName: INVOICES_BY_DATE,
        partitionKey: { name: 'taxNum', type: AttributeType.STRING },
        sortKey: { name: 'issueSort', type: AttributeType.STRING },
      },
    ],
  });
}

/**
 * The download function reads entries, adds them (never deletes or updates one), queries by issue date, and for the
 * audit scans the table and asks which folders have an entry.
 */
export function grantInvoiceIndex(table: TableV2, grantee: IGrantable): void {
  grantee.grantPrincipal.addToPrincipalPolicy(
    new PolicyStatement({
      effect: Effect.ALLOW,
      actions: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:Query', 'dynamodb:Scan', 'dynamodb:BatchGetItem'],
      resources: [table.tableArn, `${table.tableArn}/index/${INVOICES_BY_DATE}`],
    }),
  );
}

/**
 * The erp-update function marks an invoice as told (shared/invoice-erp.ts): it reads and adds to the `erpTold`
 * attribute of an entry, and no other attribute, nor any other item's.
 */
export function grantErpTold(table: TableV2, grantee: IGrantable): void {
  grantee.grantPrincipal.addToPrincipalPolicy(
    new PolicyStatement({
      effect: Effect.ALLOW,
      actions: ['dynamodb:GetItem', 'dynamodb:UpdateItem'],
      resources: [table.tableArn],
      // As AWS documents attribute-level access: the attributes named, a read that names its attributes, and an
      // update that returns at most what it wrote.
      conditions: {
        'ForAllValues:StringEquals': { 'dynamodb:Attributes': ['pk', ERP_TOLD_ATTRIBUTE] },
        StringEqualsIfExists: { 'dynamodb:Select': 'SPECIFIC_ATTRIBUTES', 'dynamodb:ReturnValues': ['NONE', 'UPDATED_OLD', 'UPDATED_NEW'] },
      },
    }),
  );
}
