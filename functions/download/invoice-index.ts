import { ConditionalCheckFailedException, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { BatchGetCommand, type BatchGetCommandOutput, DynamoDBDocumentClient, GetCommand, PutCommand, QueryCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { ERP_TOLD_ATTRIBUTE, invoiceIndexKey } from '#shared/invoice-erp';
import { decodeCursorJson, InvalidCursorError, isStringRecord } from '#shared/job-cursor';
import type { Direction } from '#shared/providers/jumdata';
import type { InvoiceEntry } from './invoice-entry.ts';

/**
 * The archive's index: one DynamoDB item per mirrored invoice, found directly by (taxNum, invoiceNo), and through
 * the `byIssueDate` index by taxNum in issue-date order (then invoice number). Listing reads the index, never the
 * bucket: its cost does not grow with the archive.
 *
 * Item: the entry, plus `pk` = `{taxNum}#{invoiceNo}` and `issueSort` = `{issueDate}#{invoiceNo}` (a tax number and
 * an invoice number hold no `#`).
 */

export const INVOICES_BY_DATE = 'byIssueDate';

export interface ListQuery {
  taxNum: string;
  /** YYYY-MM-DD, both ends included. */
  from: string;
  to: string;
  direction?: Direction;
  limit: number;
  cursor?: string;
}

export interface EntryPage {
  entries: InvoiceEntry[];
  /** Pass back for the next page; absent on the last one. */
  cursor?: string;
}

export type InvoiceIndex = ReturnType<typeof invoiceIndex>;

export function invoiceIndex(client: DynamoDBClient, tableName: string) {
  const documents = DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } });
  const pkOf = invoiceIndexKey;

  async function get(taxNum: string, invoiceNo: string): Promise<InvoiceEntry | undefined> {
    const { Item } = await documents.send(new GetCommand({ TableName: tableName, Key: { pk: pkOf(taxNum, invoiceNo) }, ConsistentRead: true }));
    return Item ? entryOf(Item) : undefined;
  }

  /**
   * Writes the entry that makes an invoice complete, unless one exists (it was completed already: an entry is never
   * replaced, so that a re-run cannot point it at other versions); true if this one was written.
   */
  async function add(entry: InvoiceEntry): Promise<boolean> {
    const item = { ...entry, pk: pkOf(entry.taxNum, entry.invoiceNo), issueSort: `${entry.issueDate}#${entry.invoiceNo}` };
    try {
      await documents.send(new PutCommand({ TableName: tableName, Item: item, ConditionExpression: 'attribute_not_exists(pk)' }));
      return true;
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return false;
      throw error;
    }
  }

  /**
   * One page of a taxpayer's invoices issued from `from` to `to`, by issue date then number. A page holds fewer than
   * `limit` entries where DynamoDB's 1 MB page ends, or where the direction filter left some out: the cursor goes on.
   */
  async function list(query: ListQuery): Promise<EntryPage> {
    const byDirection = query.direction ? { FilterExpression: '#direction = :direction' } : {};
    const { Items = [], LastEvaluatedKey } = await documents.send(
      new QueryCommand({
        TableName: tableName,
        IndexName: INVOICES_BY_DATE,
        // `#` sorts just below `$`: every number issued on `to` falls inside the range.
        KeyConditionExpression: 'taxNum = :taxNum AND issueSort BETWEEN :from AND :to',
        ...byDirection,
        ExpressionAttributeNames: query.direction ? { '#direction': 'direction' } : undefined,
        ExpressionAttributeValues: {
          ':taxNum': query.taxNum,
          ':from': `${query.from}#`,
          ':to': `${query.to}$`,
          ...(query.direction ? { ':direction': query.direction } : {}),
        },
        Limit: query.limit,
        ExclusiveStartKey: query.cursor === undefined ? undefined : startKeyOf(query.cursor, query.taxNum),
      }),
    );
    return {
      entries: Items.map(entryOf),
      cursor: LastEvaluatedKey ? Buffer.from(JSON.stringify(LastEvaluatedKey)).toString('base64url') : undefined,
    };
  }

  /**
   * One page of every entry (`taxNum` undefined: a scan of the table), or of one taxpayer's (by issue date): what the
   * audit walks. The cursor is DynamoDB's own key, kept by the audit between its runs, never taken from a caller.
   */
  async function walk(taxNum: string | undefined, cursor: string | undefined, limit: number): Promise<EntryPage> {
    const ExclusiveStartKey = cursor === undefined ? undefined : (JSON.parse(Buffer.from(cursor, 'base64url').toString()) as Record<string, string>);
    const command = taxNum
      ? new QueryCommand({ TableName: tableName, IndexName: INVOICES_BY_DATE, KeyConditionExpression: 'taxNum = :taxNum', ExpressionAttributeValues: { ':taxNum': taxNum }, Limit: limit, ExclusiveStartKey })
      : new ScanCommand({ TableName: tableName, Limit: limit, ExclusiveStartKey });
    const { Items = [], LastEvaluatedKey } = await documents.send(command);
    return { entries: Items.map(entryOf), cursor: LastEvaluatedKey ? Buffer.from(JSON.stringify(LastEvaluatedKey)).toString('base64url') : undefined };
  }

  /** Which of these invoices have an entry: one request per hundred (BatchGetItem's limit), keys only. */
  async function existing(invoices: ReadonlyArray<{ taxNum: string; invoiceNo: string }>): Promise<Set<string>> {
    const found = new Set<string>();
    for (let start = 0; start < invoices.length; start += 100) {
      let keys: Record<string, unknown>[] | undefined = invoices.slice(start, start + 100).map((invoice) => ({ pk: pkOf(invoice.taxNum, invoice.invoiceNo) }));
      // What DynamoDB could not read this time (throttling) comes back as UnprocessedKeys: asked again.
      while (keys && keys.length > 0) {
        const answer: BatchGetCommandOutput = await documents.send(new BatchGetCommand({ RequestItems: { [tableName]: { Keys: keys, ProjectionExpression: 'pk', ConsistentRead: true } } }));
        for (const item of answer.Responses?.[tableName] ?? []) found.add(item.pk as string);
        keys = answer.UnprocessedKeys?.[tableName]?.Keys;
      }
    }
    return found;
  }

  /** The walk's cursor just after `entry`: DynamoDB's key of it (the table's, or with taxNum the index's too). */
  function cursorAfter(entry: InvoiceEntry, taxNum: string | undefined): string {
    const pk = pkOf(entry.taxNum, entry.invoiceNo);
    const key = taxNum ? { pk, taxNum: entry.taxNum, issueSort: `${entry.issueDate}#${entry.invoiceNo}` } : { pk };
    return Buffer.from(JSON.stringify(key)).toString('base64url');
  }

  return { get, add, list, walk, existing, pkOf, cursorAfter };
}

const START_KEY_ATTRIBUTES = ['pk', 'taxNum', 'issueSort'];

/** The ExclusiveStartKey a cursor holds, if it is exactly such a key of this taxpayer; InvalidCursorError otherwise. */
function startKeyOf(cursor: string, taxNum: string): Record<string, string> {
  const key = decodeCursorJson(cursor);
  if (!isStringRecord(key)) throw new InvalidCursorError();
  const names = Object.keys(key);
  const exactlyTheKey = names.length === START_KEY_ATTRIBUTES.length && START_KEY_ATTRIBUTES.every((name) => names.includes(name));
  if (!exactlyTheKey || key.taxNum !== taxNum || !key.pk!.startsWith(`${taxNum}#`)) throw new InvalidCursorError();
  return key;
}

function entryOf(item: Record<string, unknown>): InvoiceEntry {
  // Which ERP invoices WDT was told of (shared/invoice-erp.ts) is the erp-update function's, not the entry's.
  const { pk: _pk, issueSort: _issueSort, [ERP_TOLD_ATTRIBUTE]: _told, ...entry } = item;
  return entry as unknown as InvoiceEntry;
}
