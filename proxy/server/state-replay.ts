/**
 * A backend connection brought to a client session's state before it runs that session's
 * command: the database, the replayable SETs in order, the multi-statement option. What a
 * connection has applied is recorded on it (stateOwner, stateGeneration, appliedSeq), so a
 * connection another session used, or one the session reset, replays from the start.
 */

import { Buffer } from 'node:buffer';
import { comInitDbFrame, comQueryFrame, Command } from '../protocol';
import type { BackendConnection } from './backend-connection';
import { StateReplayError } from './errors';
import type { SessionState } from './session-state';

/** Does `conn` already hold `s`? */
export function holdsState(conn: BackendConnection, s: SessionState): boolean {
  return (
    conn.stateOwner === s &&
    conn.stateGeneration === s.generation &&
    conn.appliedSeq === s.lastSeq &&
    (s.database === null || conn.database === s.database) &&
    (s.multiStatements === null || conn.multiStatements === s.multiStatements)
  );
}

/** Brings `conn` to `s` with internal commands; a refusal is a StateReplayError. */
export async function replayState(conn: BackendConnection, s: SessionState): Promise<void> {
  if (conn.stateOwner !== s || conn.stateGeneration !== s.generation) {
    conn.stateOwner = s;
    conn.stateGeneration = s.generation;
    conn.appliedSeq = 0;
  }
  if (s.database !== null && conn.database !== s.database) {
    const db = s.database;
    const o = await conn.runCommand(comInitDbFrame(db));
    if (o.errno !== 0) throw new StateReplayError(conn.name, `database ${db}`, o.message, o.errno);
    conn.database = db;
  }
  for (const entry of s.pendingFor(conn.stateGeneration, conn.appliedSeq)) {
    const o = await conn.runCommand(comQueryFrame(entry.statement, conn.capabilities));
    if (o.errno !== 0) throw new StateReplayError(conn.name, `setting (${entry.statement})`, o.message, o.errno);
    conn.appliedSeq = entry.seq;
  }
  if (s.multiStatements !== null && conn.multiStatements !== s.multiStatements) {
    const option = s.multiStatements ? 0 : 1;
    const o = await conn.runCommand(Buffer.from([3, 0, 0, 0, Command.COM_SET_OPTION, option, 0]));
    if (o.errno !== 0) throw new StateReplayError(conn.name, 'multi-statement option', o.message, o.errno);
    conn.multiStatements = s.multiStatements;
  }
  // The tracker's flags now describe our own commands; the client's view starts from here.
  conn.stateOwner = s;
}
