/**
 * Checks on the `app` SQL user the deploy guide and the Kubernetes init create: data rights only
 * (APP_USER_PRIVILEGES: no SUPER, FILE, PROCESS, CREATE USER or GRANT OPTION), so Dolt refuses it
 * KILL, even of another connection of the same user, and the version-control procedures that
 * touch remotes.
 */

/** The privileges the deploy files grant the application user, in the words of their GRANT. */
export const APP_USER_PRIVILEGES =
  'SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, ALTER, INDEX, REFERENCES, CREATE TEMPORARY TABLES, LOCK TABLES, EXECUTE, CREATE VIEW, SHOW VIEW, CREATE ROUTINE, ALTER ROUTINE, TRIGGER, EVENT';

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

/**
 * The deploy guide's users on a node, made through `admin` (a root connection): `doltgate`,
 * local-only with every right, at `agentPassword`, and `app` with APP_USER_PRIVILEGES.
 */
export async function createDeployUsers(admin: Connection, agentPassword: string, appPassword: string): Promise<void> {
  await admin.query(`CREATE USER 'doltgate'@'localhost' IDENTIFIED BY '${agentPassword}'`);
  await admin.query("GRANT ALL ON *.* TO 'doltgate'@'localhost' WITH GRANT OPTION");
  await admin.query(`CREATE USER 'app'@'%' IDENTIFIED BY '${appPassword}'`);
  await admin.query(`GRANT ${APP_USER_PRIVILEGES} ON *.* TO 'app'@'%'`);
}
