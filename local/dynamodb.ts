import type { AddressInfo } from 'node:net';
import { CreateTableCommand, DynamoDBClient, ResourceInUseException } from '@aws-sdk/client-dynamodb';
import dynalite from 'dynalite';
import { JOBS_INDEX } from '#shared/jobs';
import { INVOICES_BY_DATE } from '../functions/download/invoice-index.ts';

/**
 * Local mode's DynamoDB: dynalite (DynamoDB's API over LevelDB) on 127.0.0.1, with the jobs table and the archive's
 * index as the stack defines them (infra/jobs-table.ts, infra/invoices-table.ts). Data in a folder, or in memory when none is given. It accepts any credentials.
 * dynalite has no TTL: done records stay until the folder is removed.
 */

export interface LocalDynamo {
  endpoint: string;
  close(): Promise<void>;
}

export async function startLocalDynamo(options: {
  directory?: string;
  tables: string[];
  /** Tables shaped as the archive's index of invoices (infra/invoices-table.ts). */
  invoiceTables?: string[];
  port?: number;
}): Promise<LocalDynamo> {
  const server = dynalite({ path: options.directory, createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  await new Promise<void>((ready, fail) => {
    server.once('error', fail);
    server.listen(options.port ?? 0, '127.0.0.1', ready);
  });
  const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const client = new DynamoDBClient({ endpoint, region: 'cn-north-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });
  for (const table of options.tables) await createJobsTable(client, table);
  for (const table of options.invoiceTables ?? []) await createInvoicesTable(client, table);
  client.destroy();
  return { endpoint, close: () => new Promise((done) => server.close(() => done())) };
}

const createJobsTable = (client: DynamoDBClient, name: string) => createTable(client, name, JOBS_INDEX, 'queue', 'dueAt');
const createInvoicesTable = (client: DynamoDBClient, name: string) => createTable(client, name, INVOICES_BY_DATE, 'taxNum', 'issueSort');

/** A table keyed by `pk`, with one index (every attribute projected) on `partition` + `sort`. */
async function createTable(client: DynamoDBClient, name: string, indexName: string, partition: string, sort: string): Promise<void> {
  try {
    await client.send(
      new CreateTableCommand({
        TableName: name,
        BillingMode: 'PAY_PER_REQUEST',
        AttributeDefinitions: [
          { AttributeName: 'pk', AttributeType: 'S' },
          { AttributeName: partition, AttributeType: 'S' },
          { AttributeName: sort, AttributeType: 'S' },
        ],
        KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
        GlobalSecondaryIndexes: [
          {
            IndexName: indexName,
            KeySchema: [
              { AttributeName: partition, KeyType: 'HASH' },
              { AttributeName: sort, KeyType: 'RANGE' },
            ],
            Projection: { ProjectionType: 'ALL' },
          },
        ],
      }),
    );
  } catch (error) {
    if (!(error instanceof ResourceInUseException)) throw error; // kept from an earlier run
  }
}
