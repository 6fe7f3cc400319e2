import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';

/**
 * Which ERP invoices 旺店通 was told of an archived invoice: the string set `erpTold` on the invoice's entry in the
 * archive's index (functions/download/invoice-index.ts), so that the fact lives as long as the invoice, not only as
 * long as a job record. The erp-update function marks it once WDT answered code 0; the download function reads it.
 */

/** The index's key of an invoice: `{taxNum}#{invoiceNo}` (neither holds a `#`). */
export const invoiceIndexKey = (taxNum: string, invoiceNo: string) => `${taxNum}#${invoiceNo}`;

/** The attribute, never part of an entry as the archive answers it. */
export const ERP_TOLD_ATTRIBUTE = 'erpTold';

/** An archived invoice a chained ERP update is about. */
export interface InvoiceRef {
  taxNum: string;
  invoiceNo: string;
}

export type ErpTold = ReturnType<typeof erpTold>;

export function erpTold(client: DynamoDBClient, tableName: string) {
  const documents = DynamoDBDocumentClient.from(client);
  const key = (invoice: InvoiceRef) => ({ pk: invoiceIndexKey(invoice.taxNum, invoice.invoiceNo) });

  async function wasTold(invoice: InvoiceRef, erpInvoiceNo: string): Promise<boolean> {
    const { Item } = await documents.send(
      new GetCommand({ TableName: tableName, Key: key(invoice), ProjectionExpression: '#told', ExpressionAttributeNames: { '#told': ERP_TOLD_ATTRIBUTE }, ConsistentRead: true }),
    );
    return (Item?.[ERP_TOLD_ATTRIBUTE] as Set<string> | undefined)?.has(erpInvoiceNo) ?? false;
  }

  /** Adds `erpInvoiceNo` to the set; the entry must exist (an update is only chained to an archived invoice). */
  async function markTold(invoice: InvoiceRef, erpInvoiceNo: string): Promise<void> {
    await documents.send(
      new UpdateCommand({
        TableName: tableName,
        Key: key(invoice),
        UpdateExpression: 'ADD #told :erp',
        ConditionExpression: 'attribute_exists(pk)',
        ExpressionAttributeNames: { '#told': ERP_TOLD_ATTRIBUTE },
        ExpressionAttributeValues: { ':erp': new Set([erpInvoiceNo]) },
      }),
    );
  }

  return { wasTold, markTold };
}
