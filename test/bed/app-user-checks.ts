/**
 * Checks on the `app` SQL user the deploy guide and the Kubernetes init create: it lacks SUPER,
 * so Dolt refuses it KILL, even of another connection of the same user.
 */

import { expect } from 'chai';
import type { Connection, RowDataPacket } from 'mysql2/promise';

/** The id Dolt gave `connection` (what a KILL names). */
export async function connectionId(connection: Connection): Promise<number> {
  const [rows] = await connection.query<RowDataPacket[]>('SELECT CONNECTION_ID() AS id');
  return Number(rows[0].id);
}

/** `killer` tries to KILL `victim`'s connection: refused with "command denied", and `victim` still answers. */
export async function expectKillRefused(killer: Connection, victim: Connection): Promise<void> {
  const refusal = await killer.query(`KILL ${await connectionId(victim)}`).then(
    () => null,
    (error: Error) => error.message,
  );
  expect(refusal, 'KILL as a user without SUPER').to.match(/command denied/);
  const [after] = await victim.query<RowDataPacket[]>('SELECT 1 AS alive');
  expect(after[0].alive).to.equal(1);
}
