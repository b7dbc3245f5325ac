/**
 * Asks every node, straight on its public SQL port and over and over, whether it accepts a write
 * right now: BEGIN, INSERT into a probe table, ROLLBACK (nothing is ever committed). A read-only
 * Dolt refuses the INSERT; a dead, frozen or fenced one does not answer in time. The rounds make
 * a timeline, and a run of rounds in which two nodes accepted a write is a dual-writable window:
 * what design.md safety 1 says must never happen.
 *
 * Bounded: one connection per node, a short timeout per statement, a pause between rounds, and
 * it stops at `stop()` or its deadline.
 */

import mysql from 'mysql2/promise';
import { sleep } from './write-load';

export interface ProbeTarget {
  name: string;
  port: number;
}

export interface ProbeRound {
  at: number;
  writable: string[];
}

export interface DualWindow {
  from: number;
  until: number;
  nodes: string[];
}

export class WritabilityProbe {
  readonly rounds: ProbeRound[] = [];
  private readonly connections = new Map<string, mysql.Connection>();
  private stopped = false;
  private done: Promise<void> | null = null;
  private sequence = 0;

  constructor(
    private readonly targets: () => ProbeTarget[],
    private readonly options: { database: string; table: string; intervalMs: number; timeoutMs: number; deadline: number },
  ) {}

  start(): void {
    this.done ??= this.loop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.done;
    for (const connection of this.connections.values()) connection.destroy();
    this.connections.clear();
  }

  /** Runs of consecutive rounds with two or more writable nodes inside [from, until). */
  dualWindows(from = 0, until = Number.POSITIVE_INFINITY): DualWindow[] {
    const windows: DualWindow[] = [];
    let open: DualWindow | null = null;
    for (const round of this.rounds) {
      if (round.at < from || round.at >= until) continue;
      if (round.writable.length >= 2) {
        if (open === null) {
          open = { from: round.at, until: round.at, nodes: [...round.writable] };
          windows.push(open);
        } else {
          open.until = round.at;
          for (const node of round.writable) if (!open.nodes.includes(node)) open.nodes.push(node);
        }
      } else {
        open = null;
      }
    }
    return windows;
  }

  private async loop(): Promise<void> {
    while (!this.stopped && Date.now() < this.options.deadline) {
      const at = Date.now();
      const writable: string[] = [];
      for (const target of this.targets()) {
        if (await this.acceptsWrite(target)) writable.push(target.name);
      }
      this.rounds.push({ at, writable });
      await sleep(this.options.intervalMs);
    }
  }

  private async acceptsWrite(target: ProbeTarget): Promise<boolean> {
    const timeout = this.options.timeoutMs;
    try {
      let connection = this.connections.get(target.name);
      if (connection === undefined) {
        connection = await withDeadline(
          mysql.createConnection({ host: '127.0.0.1', port: target.port, user: 'root', password: '', database: this.options.database, connectTimeout: timeout }),
          timeout,
        );
        connection.on('error', () => this.forget(target.name));
        this.connections.set(target.name, connection);
      }
      await connection.query({ sql: 'BEGIN', timeout });
      try {
        await connection.query({ sql: `INSERT INTO ${this.options.table} (id) VALUES (?)`, timeout }, [++this.sequence]);
        return true;
      } finally {
        await connection.query({ sql: 'ROLLBACK', timeout }).catch(() => this.forget(target.name));
      }
    } catch (error) {
      // A refusal from the server (read-only: errno 1105) leaves the connection usable; anything
      // else (refused, reset, a timeout) may not.
      const e = error as { errno?: number; fatal?: boolean };
      if (e.errno === undefined || e.fatal === true) this.forget(target.name);
      return false;
    }
  }

  private forget(name: string): void {
    this.connections.get(name)?.destroy();
    this.connections.delete(name);
  }
}

function withDeadline<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
