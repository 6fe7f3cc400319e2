import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, PutCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import type { LastError } from '#shared/errors';
import { startKeyOf } from '#shared/job-cursor';

/**
 * The durable record of every job that is running or did not finish: a download that ran out of time or met a
 * temporary answer, a re-push or ERP update that met a network failure, a timeout or a rate limit, and the ones
 * that failed for good. One DynamoDB table for the three functions (why DynamoDB and not the bucket: the sweeps ask
 * "which jobs are due now?", which a sorted index answers in one query, and the records change often and
 * conditionally; see docs/jobs.md).
 *
 * A record is also a lease: it is created only if absent and replaced only at the version that was read, so of
 * any number of concurrent writers exactly one wins.
 *
 * Item layout (table `pk`, index `byQueue` on `queue` + `dueAt`):
 *   pk       `{function}#job#{key}` (a key is any text, e.g. an ERP invoice number: the `job#` segment keeps it
 *            apart from the counters and locks below)
 *   queue    `{function}#open` while running or pending (dueAt: when the lease lapses / the next attempt is due)
 *            `{function}#failed` when failed (dueAt: when it failed); absent once done
 *   dueAt    `{ISO time}#{pk}`: the time, then the job's own key, so that no two entries share an index key. Jobs
 *            due in the same millisecond are ordered by key, and dynalite (local mode's DynamoDB), which keeps one
 *            index entry per index key plus a six-hex-digit hash of the table key, cannot drop one of them.
 *   expiresAt  epoch seconds: done records are deleted by the table's TTL a day after they finish
 * Two other kinds of item share the table, under the same function prefix (so one IAM condition covers them):
 *   `{function}#count#{name}`  a counter with a ceiling (retry's re-pushes per order per day), expiring by TTL
 *   `{function}#lock#{name}`   a short lock (one sweep of a function at a time)
 */

/** The index of open and failed jobs by function and due time. */
export const JOBS_INDEX = 'byQueue';

export type JobFunction = 'retry' | 'erp-update' | 'download';
export const JOB_FUNCTIONS: readonly JobFunction[] = ['retry', 'erp-update', 'download'];

/** running: someone holds the lease · pending: to be tried again at nextAttemptAt · failed: will not succeed as it is · done. */
export type JobState = 'running' | 'pending' | 'failed' | 'done';

export interface JobRecord {
  fn: JobFunction;
  /** The job's identity within its function, e.g. `{taxNum}/{invoiceNo}`. */
  key: string;
  /** The request as the HTTP API takes it. */
  request: unknown;
  state: JobState;
  attempts: number;
  /** While running: when the lease lapses and another invocation may take over. */
  leaseUntil?: string;
  /** The answer the last attempt gave (status, error body, Retry-After). */
  lastError?: LastError;
  nextAttemptAt?: string;
  /** While running: the holder's own deadline, so that a waiting request knows how long the holder may still need. */
  workUntil?: string;
  /** The scheduled run (its scheduled time) that last finished this job: the same run retried by AWS replays it. */
  lastRunId?: string;
  /** The result of the attempt that finished the job (done), unless it is kept elsewhere (the download's archive). */
  result?: unknown;
  createdAt: string;
  updatedAt: string;
}

export interface Held<T> {
  value: T;
  version: number;
}

/** Another writer got there first: the record exists (create) or has changed (replace). */
export class JobConflictError extends Error {
  constructor(pk: string) {
    super(`job ${pk} was changed by another writer`);
    this.name = 'JobConflictError';
  }
}

/** How long a done record is kept: long enough that no late claimant of the same job can create it anew. */
const DONE_RECORD_SECONDS = 24 * 3600;

export type JobQueue = 'open' | 'failed';

export interface JobPage<T> {
  jobs: Array<Held<T>>;
  /** Pass back to get the next page; absent on the last one. */
  cursor?: string;
}

export class JobStore {
  private readonly documents: DynamoDBDocumentClient;

  constructor(
    client: DynamoDBClient,
    readonly tableName: string,
  ) {
    this.documents = DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } });
  }

  async get<T extends JobRecord>(fn: JobFunction, key: string): Promise<Held<T> | undefined> {
    const { Item } = await this.documents.send(
      new GetCommand({ TableName: this.tableName, Key: { pk: pkOf(fn, key) }, ConsistentRead: true }),
    );
    return Item ? fromItem<T>(Item) : undefined;
  }

  /** Writes `record` if no record of the job exists; undefined if one does. */
  async create<T extends JobRecord>(record: T): Promise<Held<T> | undefined> {
    try {
      return await this.write(record, 1, 'attribute_not_exists(pk)');
    } catch (error) {
      if (error instanceof JobConflictError) return undefined;
      throw error;
    }
  }

  /** Replaces the record read as `held`; throws JobConflictError if it changed since. */
  replace<T extends JobRecord>(held: Held<T>, record: T): Promise<Held<T>> {
    return this.write(record, held.version + 1, '#version = :held', { ':held': held.version });
  }

  /** Jobs of one function in a queue, by dueAt; `dueBy` keeps those due by then (the sweep's question). */
  async list<T extends JobRecord>(
    fn: JobFunction,
    queue: JobQueue,
    options: { dueBy?: Date; limit: number; cursor?: string },
  ): Promise<JobPage<T>> {
    // An entry is `{time}#{pk}`, and `#` sorts just below `$`: this keeps every job due by then, whatever its key.
    const due = options.dueBy ? ' AND dueAt < :dueBy' : '';
    const { Items = [], LastEvaluatedKey } = await this.documents.send(
      new QueryCommand({
        TableName: this.tableName,
        IndexName: JOBS_INDEX,
        KeyConditionExpression: `#queue = :queue${due}`,
        ExpressionAttributeNames: { '#queue': 'queue' },
        ExpressionAttributeValues: { ':queue': `${fn}#${queue}`, ...(options.dueBy ? { ':dueBy': `${options.dueBy.toISOString()}$` } : {}) },
        Limit: options.limit,
        ExclusiveStartKey: options.cursor ? startKeyOf(options.cursor, `${fn}#${queue}`) : undefined,
      }),
    );
    return {
      jobs: Items.map((item) => fromItem<T>(item)),
      cursor: LastEvaluatedKey ? Buffer.from(JSON.stringify(LastEvaluatedKey)).toString('base64url') : undefined,
    };
  }

  /**
   * Adds one to the counter `name` unless it reached `ceiling`; true if it was added. The counter is deleted by
   * TTL at `expiresAt`. One conditional update: concurrent callers can never go past the ceiling together.
   */
  async countUpTo(fn: JobFunction, name: string, ceiling: number, expiresAt: Date): Promise<boolean> {
    try {
      await this.documents.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { pk: `${fn}#count#${name}` },
          UpdateExpression: 'ADD #count :one SET expiresAt = :expiresAt',
          ConditionExpression: 'attribute_not_exists(#count) OR #count < :ceiling',
          ExpressionAttributeNames: { '#count': 'count' },
          ExpressionAttributeValues: { ':one': 1, ':ceiling': ceiling, ':expiresAt': Math.floor(expiresAt.getTime() / 1000) },
        }),
      );
      return true;
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return false;
      throw error;
    }
  }

  /** Takes the lock `name` for `seconds` unless someone else holds it; true if taken. */
  async lock(fn: JobFunction, name: string, owner: string, seconds: number): Promise<boolean> {
    const now = Date.now();
    try {
      await this.documents.send(
        new PutCommand({
          TableName: this.tableName,
          Item: { pk: `${fn}#lock#${name}`, owner, lockedUntil: now + seconds * 1000, expiresAt: Math.floor(now / 1000) + seconds + 86_400 },
          ConditionExpression: 'attribute_not_exists(pk) OR lockedUntil < :now OR #owner = :owner',
          ExpressionAttributeNames: { '#owner': 'owner' },
          ExpressionAttributeValues: { ':now': now, ':owner': owner },
        }),
      );
      return true;
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return false;
      throw error;
    }
  }

  /** Gives the lock back early, if it is still ours. */
  async unlock(fn: JobFunction, name: string, owner: string): Promise<void> {
    try {
      await this.documents.send(
        new PutCommand({
          TableName: this.tableName,
          Item: { pk: `${fn}#lock#${name}`, owner, lockedUntil: 0, expiresAt: Math.floor(Date.now() / 1000) + 86_400 },
          ConditionExpression: '#owner = :owner',
          ExpressionAttributeNames: { '#owner': 'owner' },
          ExpressionAttributeValues: { ':owner': owner },
        }),
      );
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
    }
  }

  private async write<T extends JobRecord>(
    record: T,
    version: number,
    condition: string,
    values: Record<string, unknown> = {},
  ): Promise<Held<T>> {
    const pk = pkOf(record.fn, record.key);
    try {
      await this.documents.send(
        new PutCommand({
          TableName: this.tableName,
          Item: itemOf(record, version),
          ConditionExpression: condition,
          ExpressionAttributeNames: condition.includes('#version') ? { '#version': 'version' } : undefined,
          ExpressionAttributeValues: Object.keys(values).length > 0 ? values : undefined,
        }),
      );
      return { value: record, version };
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) throw new JobConflictError(pk);
      throw error;
    }
  }
}

/** The table key of a job's record. */
export const jobPk = (fn: JobFunction, key: string) => `${fn}#job#${key}`;
const pkOf = jobPk;

/** The table item of a record at a version: the record, its key, and where it sits in the byQueue index. */
export function itemOf(record: JobRecord, version: number): Record<string, unknown> {
  return { ...record, pk: pkOf(record.fn, record.key), version, ...indexAttributes(record) };
}

/** When an open job is due to be taken up (ISO time): a running one when its lease lapses, a pending one at its next attempt. */
export function dueTimeOf(record: JobRecord): string {
  return (record.state === 'running' ? record.leaseUntil : record.nextAttemptAt) ?? record.updatedAt;
}

/** Where a record sits in the byQueue index, and when a done one expires. */
function indexAttributes(record: JobRecord): Record<string, string | number | undefined> {
  const dueAt = (time: string) => `${time}#${pkOf(record.fn, record.key)}`;
  switch (record.state) {
    case 'running':
    case 'pending':
      return { queue: `${record.fn}#open`, dueAt: dueAt(dueTimeOf(record)) };
    case 'failed':
      return { queue: `${record.fn}#failed`, dueAt: dueAt(record.updatedAt) };
    case 'done':
      return { expiresAt: Math.floor(Date.parse(record.updatedAt) / 1000) + DONE_RECORD_SECONDS };
  }
}

function fromItem<T extends JobRecord>(item: Record<string, unknown>): Held<T> {
  const { pk: _pk, version, queue: _queue, dueAt: _dueAt, expiresAt: _expiresAt, ...record } = item;
  return { value: record as unknown as T, version: version as number };
}

/** `client`: a function's DynamoDB client, shared with a table it marshals alike (the download's index). */
export function createJobStore(tableName: string, client = new DynamoDBClient({})): JobStore {
  // Local mode points the SDK at its embedded DynamoDB with AWS_ENDPOINT_URL_DYNAMODB.
  return new JobStore(client, tableName);
}

export const isLeaseLive = (job: JobRecord, now = Date.now()) =>
  job.state === 'running' && job.leaseUntil !== undefined && Date.parse(job.leaseUntil) > now;
