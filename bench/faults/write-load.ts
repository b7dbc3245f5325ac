/**
 * The fault suite's clients: writers through the proxy, each on one mysql2 connection (reopened
 * when it breaks), recording every write's outcome. Writer kinds, as an application would write:
 *  - autocommit: one INSERT per write;
 *  - transaction: BEGIN, INSERT, INSERT, COMMIT (both rows acknowledged by the COMMIT's OK).
 * Ids are unique per writer (writer * 10^9 + sequence), so every acknowledged id can be looked up.
 *
 * Bounded: each writer stops at `stop()`, at its deadline, or after `maxWrites`, whichever first,
 * and paces itself (`pauseMs` between writes) so the load does not starve a 2-core machine.
 */

import mysql from 'mysql2/promise';

export type WriterKind = 'autocommit' | 'transaction';

export interface WriteOutcome {
  /** Ids the write carried. */
  ids: number[];
  /** When it was sent and when the client heard back (ms, Date.now()). */
  sentAt: number;
  doneAt: number;
  ok: boolean;
  /** The OK carried warnings (cluster replication: 3024, a standby did not acknowledge in time). */
  warned: boolean;
  /** errno, or the error's code when it has none (ECONNREFUSED, PROTOCOL_CONNECTION_LOST). */
  error: string | null;
}

export interface WriterOptions {
  index: number;
  kind: WriterKind;
  port: number;
  user: string;
  password: string;
  database: string;
  table: string;
  deadline: number;
  maxWrites: number;
  pauseMs: number;
}

export class Writer {
  readonly outcomes: WriteOutcome[] = [];
  private stopped = false;
  private paused = false;
  /** Resolves the pause() waiting for the write in flight to end. */
  private parked: (() => void) | null = null;
  private sequence = 0;
  private connection: mysql.Connection | null = null;
  private done: Promise<void> | null = null;

  constructor(readonly options: WriterOptions) {}

  start(): void {
    this.done ??= this.loop();
  }

  /**
   * No new writes until resume(); resolves once the write in flight (if any) has its answer, so a
   * check made now sees the same data on every node that will ever see it.
   */
  pause(): Promise<void> {
    this.paused = true;
    if (this.done === null) return Promise.resolve();
    return new Promise((resolve) => {
      this.parked = resolve;
    });
  }

  resume(): void {
    this.paused = false;
    this.parked = null;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.paused = false;
    this.parked?.();
    await this.done;
    this.connection?.destroy();
    this.connection = null;
  }

  /** Whether a write sent at or after `since` was acknowledged. */
  ackedSentSince(since: number): boolean {
    for (let i = this.outcomes.length - 1; i >= 0; i--) {
      const o = this.outcomes[i];
      if (o.sentAt < since) return false;
      if (o.ok) return true;
    }
    return false;
  }

  /** Ids whose OK carried a warning. */
  warnedIds(): number[] {
    return this.outcomes.filter((o) => o.ok && o.warned).flatMap((o) => o.ids);
  }

  /** Every id a client got OK for. */
  acknowledgedIds(from = 0, until = Number.POSITIVE_INFINITY): number[] {
    return this.outcomes.filter((o) => o.ok && o.doneAt >= from && o.doneAt < until).flatMap((o) => o.ids);
  }

  /** The longest stretch without an acknowledgement inside [from, until). */
  longestGap(from: number, until: number): number {
    let last = from;
    let longest = 0;
    for (const o of this.outcomes) {
      if (!o.ok || o.doneAt < from) continue;
      if (o.doneAt >= until) break;
      longest = Math.max(longest, o.doneAt - last);
      last = o.doneAt;
    }
    return Math.max(longest, until - last);
  }

  errorsBetween(from: number, until: number): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const o of this.outcomes) {
      if (o.ok || o.doneAt < from || o.doneAt >= until || o.error === null) continue;
      counts[o.error] = (counts[o.error] ?? 0) + 1;
    }
    return counts;
  }

  private nextId(): number {
    return this.options.index * 1_000_000_000 + ++this.sequence;
  }

  private async loop(): Promise<void> {
    const o = this.options;
    let writes = 0;
    while (!this.stopped && Date.now() < o.deadline && writes < o.maxWrites) {
      if (this.paused) {
        this.parked?.();
        this.parked = null;
        await sleep(20);
        continue;
      }
      writes++;
      const ids = o.kind === 'autocommit' ? [this.nextId()] : [this.nextId(), this.nextId()];
      const sentAt = Date.now();
      try {
        const connection = await this.connect();
        let committed: unknown;
        if (o.kind === 'autocommit') {
          [committed] = await connection.query({ sql: `INSERT INTO ${o.table} (id, writer, at) VALUES (?, ?, ?)`, timeout: 30_000 }, [ids[0], o.index, sentAt]);
        } else {
          await connection.query({ sql: 'BEGIN', timeout: 30_000 });
          for (const id of ids) await connection.query({ sql: `INSERT INTO ${o.table} (id, writer, at) VALUES (?, ?, ?)`, timeout: 30_000 }, [id, o.index, sentAt]);
          [committed] = await connection.query({ sql: 'COMMIT', timeout: 30_000 });
        }
        const warned = Number((committed as { warningStatus?: number }).warningStatus ?? 0) > 0;
        this.outcomes.push({ ids, sentAt, doneAt: Date.now(), ok: true, warned, error: null });
      } catch (error) {
        const e = error as { errno?: number; code?: string };
        // mysql2 gives a socket error a negative errno (-111): the code (ECONNREFUSED) says more.
        const code = e.errno !== undefined && e.errno > 0 ? String(e.errno) : e.code ?? 'unknown';
        this.outcomes.push({ ids, sentAt, doneAt: Date.now(), ok: false, warned: false, error: code });
        // A broken connection is replaced; an ERR on a live one (inside a transaction too) leaves it usable after a ROLLBACK.
        if (this.connection !== null) await this.connection.query('ROLLBACK').catch(() => this.drop());
        await sleep(50);
      }
      await sleep(o.pauseMs);
    }
  }

  private async connect(): Promise<mysql.Connection> {
    if (this.connection !== null) return this.connection;
    const o = this.options;
    const connection = await mysql.createConnection({ host: '127.0.0.1', port: o.port, user: o.user, password: o.password, database: o.database, connectTimeout: 5_000 });
    connection.on('error', () => this.drop());
    this.connection = connection;
    return connection;
  }

  private drop(): void {
    this.connection?.destroy();
    this.connection = null;
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
