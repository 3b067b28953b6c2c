// The metrics worker's lease (thin adapter over PostgreSQL): a session-level advisory lock held on one dedicated
// connection, which is also the connection all of the active worker's database work runs on. While that connection
// lives the lock is held; when it dies (the process was killed, the backend terminated, the network gone) PostgreSQL
// releases the lock, and nothing more can be done on it: database work is fenced by construction.
import pg from 'pg';
import type { Config } from '../common/config.ts';
import { databaseUrl, type SqlSession } from '../common/db.ts';
import type { Logger } from '../common/log.ts';

/** Any constant; advisory locks are per database, so two stacks on two databases never meet. (migrate uses 727_274_001.) */
export const METRICS_LEASE_KEY = 727_274_017;

export const LEASE_APPLICATION_NAME = 'tickwatch-metrics-lease';

/** Thrown by the lease's session once the lease is lost: the caller stops acting. */
export class LeaseLostError extends Error {
  constructor(reason: string) {
    super(`metrics lease lost: ${reason}`);
    this.name = 'LeaseLostError';
  }
}

/**
 * One attempt at the lease: connects (once per attempt), tries the lock without waiting. Held until `release()` or
 * until the connection fails; `lost` resolves then, with the reason. All database work of the holder goes through
 * `session`, one unit of work at a time (`exclusive`), so a mail's state update never lands inside a step's transaction.
 */
export class Lease {
  private client: pg.Client | undefined;
  private heldNow = false;
  private lostReason: string | undefined;
  private resolveLost!: (reason: string) => void;
  /** Resolves with the reason once a held lease is lost (or released). */
  readonly lost = new Promise<string>((r) => (this.resolveLost = r));
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly config: Pick<Config, 'database'>,
    private readonly log: Logger,
  ) {}

  get held(): boolean {
    return this.heldNow;
  }

  /** Once held and lost, or released: this instance is done. */
  get lostOrReleased(): boolean {
    return this.lostReason !== undefined;
  }

  /** The backend pid of the lease connection (tests terminate it). */
  pid: number | undefined;

  /**
   * Tries the lock without waiting, on the standing connection (made, or made again after a failure, here); true when
   * this instance now holds the lease. An instance holds the lease once: after it is lost, make a new one.
   */
  async tryAcquire(): Promise<boolean> {
    if (this.lostReason !== undefined) throw new Error('a lost lease is not taken again: make a new Lease');
    this.client ??= await this.connect();
    const client = this.client;
    let got: boolean;
    try {
      const r = await client.query<{ got: boolean; pid: number }>('SELECT pg_try_advisory_lock($1) AS got, pg_backend_pid() AS pid', [METRICS_LEASE_KEY]);
      got = r.rows[0]?.got === true;
      this.pid = r.rows[0]?.pid;
    } catch (err) {
      this.drop(client);
      throw err;
    }
    if (got && this.client === client) this.heldNow = true;
    return this.heldNow;
  }

  private async connect(): Promise<pg.Client> {
    const client = new pg.Client({
      connectionString: databaseUrl(this.config, 'metrics'),
      application_name: LEASE_APPLICATION_NAME,
      connectionTimeoutMillis: 10_000,
      // The client notices a dead server (no FIN: a host or network gone) through TCP keepalive.
      keepAlive: true,
      keepAliveInitialDelayMillis: 1_000,
    });
    client.on('error', (err) => this.broken(client, `connection error: ${err.message}`));
    client.on('end', () => this.broken(client, 'connection ended'));
    try {
      await client.connect();
      // The server notices a dead client as fast: keepalive probes on an idle session, and a check of the socket every
      // second while a statement runs (a SIGKILLed worker's refresh is cancelled instead of holding the lock to its end).
      await client.query(
        `SELECT set_config('tcp_keepalives_idle', '5', false), set_config('tcp_keepalives_interval', '1', false),
                set_config('tcp_keepalives_count', '3', false), set_config('client_connection_check_interval', '1000', false)`,
      );
    } catch (err) {
      this.drop(client);
      throw err;
    }
    return client;
  }

  /** A standby's connection that failed is dropped (the next attempt connects again); a holder's is the lease lost. */
  private broken(client: pg.Client, reason: string): void {
    if (client !== this.client) return;
    if (this.heldNow) this.fail(reason);
    else this.drop(client);
  }

  private drop(client: pg.Client): void {
    if (this.client === client) this.client = undefined;
    client.removeAllListeners('end');
    client.on('error', () => undefined);
    void client.end().catch(() => undefined);
  }

  /** A round trip on the lease connection: fails (and marks the lease lost) when the connection is gone. */
  async check(): Promise<void> {
    await this.session.query('SELECT 1');
  }

  /** Runs `work` alone on the lease connection (units of work queue behind each other). */
  exclusive<T>(work: () => Promise<T>): Promise<T> {
    const run = this.queue.then(work, work);
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** The lease connection as a session: every call first checks the lease is still held. */
  readonly session: SqlSession = {
    query: async <R extends Record<string, unknown>>(sql: string, params?: unknown[]) => {
      const c = this.holder();
      try {
        return { rows: (await c.query(sql, params)).rows as R[] };
      } catch (err) {
        // A connection error (no SQLSTATE), an operator intervention (57P..: terminated, shut down) or a connection
        // exception (08...) is the lease lost, not a failed statement: its 'end' may come a moment later.
        const code = (err as { code?: unknown }).code;
        if (typeof code !== 'string' || code.startsWith('57P') || code.startsWith('08')) this.fail((err as Error).message);
        if (!this.heldNow) throw new LeaseLostError(this.lostReason ?? (err as Error).message);
        throw err;
      }
    },
    exec: async (sql: string) => {
      await this.session.query(sql);
    },
  };

  /** Gives the lease up (or stops trying): the connection is closed, which releases the lock. */
  async release(): Promise<void> {
    const c = this.client;
    this.fail('released');
    c?.removeAllListeners('end');
    await c?.end().catch(() => undefined);
  }

  private holder(): pg.Client {
    if (!this.heldNow || !this.client) throw new LeaseLostError(this.lostReason ?? 'not held');
    return this.client;
  }

  private fail(reason: string): void {
    if (this.lostReason !== undefined) return;
    this.lostReason = reason;
    const was = this.heldNow;
    this.heldNow = false;
    if (was && reason !== 'released') this.log.warn({ reason }, 'metrics lease lost: stopping at once');
    this.resolveLost(reason);
    // A connection that failed is closed for good: the server releases the lock with its backend.
    if (reason !== 'released' && this.client) this.drop(this.client);
  }
}
