/**
 * The hot path's question (proxy/server/ready-connection.ts), rule by rule: which connection a
 * command can go to without I/O, or null (async setup), and where a read was settled to go.
 * Fake connections and session backends: plain objects with the fields the rules read.
 */

import { expect } from 'chai';
import { Command } from '../../proxy/protocol';
import type { BackendConnection } from '../../proxy/server/backend-connection';
import { jobFields, newJob, type Job } from '../../proxy/server/command-job';
import type { PreparedStatement } from '../../proxy/server/prepared-statements';
import { readyConnection } from '../../proxy/server/ready-connection';
import type { RouteKind } from '../../proxy/routing/route-decision';
import type { ReplicaSelector } from '../../proxy/routing/replica-selector';
import type { SessionBackends } from '../../proxy/server/session-backends';

interface FakeConn {
  name: string;
  role: 'primary' | 'replica';
  isIdle: boolean;
  isClosed: boolean;
  preparedOnly: boolean;
  commitMessage: string;
  database: string | null;
}

function conn(name: string, role: 'primary' | 'replica', over: Partial<FakeConn> = {}): BackendConnection {
  return { name, role, target: { name }, isIdle: true, isClosed: false, preparedOnly: false, commitMessage: '', database: 'app', ...over } as unknown as BackendConnection;
}

interface World {
  primary: BackendConnection | null;
  replicas: Record<string, BackendConnection>;
  last: BackendConnection | null;
  /** What the selector would pick next. */
  pick: string | undefined;
  unavailable: string[];
  unsynced: BackendConnection[];
}

function world(over: Partial<World> = {}): World {
  return { primary: conn('n1', 'primary'), replicas: { n2: conn('n2', 'replica'), n3: conn('n3', 'replica') }, last: null, pick: 'n2', unavailable: [], unsynced: [], ...over };
}

function backendsOf(w: World): SessionBackends {
  return {
    pickReplica: () => w.pick,
    readyReplica: (name: string) => w.replicas[name] ?? null,
    readyPrimary: () => w.primary,
    get last() {
      return w.last;
    },
    synced: (c: BackendConnection) => !w.unsynced.includes(c),
    usable: () => true,
  } as unknown as SessionBackends;
}

function selectorOf(w: World): ReplicaSelector {
  return { isAvailable: (name: string) => !w.unavailable.includes(name) } as unknown as ReplicaSelector;
}

function job(route: RouteKind, over: Partial<Job> = {}): Job {
  return { ...newJob(Command.COM_QUERY, route, false, 'none', Buffer.alloc(0), true, 0, jobFields({})), ...over };
}

function statement(on: BackendConnection[], types: Buffer | null = null): PreparedStatement {
  return { placements: on.map((c) => ({ conn: c, backendId: 7, typesSent: false })), types } as unknown as PreparedStatement;
}

function ready(j: Job, w: World): string {
  const c = readyConnection(j, backendsOf(w), selectorOf(w), 0);
  const route = `route ${j.route}${j.replica === undefined ? '' : ` ${j.replica}`}`;
  return c === null ? `setup (${route})` : `${c.name} (${route})`;
}

describe('ready connection (the hot path, rule by rule)', () => {
  it('a write goes to the ready primary', () => {
    expect(ready(job('primary'), world())).to.equal('n1 (route primary)');
  });

  it('no ready primary: setup (connect, replay, or the write hold)', () => {
    expect(ready(job('primary'), world({ primary: null }))).to.equal('setup (route primary)');
  });

  it('a read goes to the replica the selector picks', () => {
    expect(ready(job('replica'), world())).to.equal('n2 (route replica n2)');
  });

  it('a read with no replica available goes to the primary', () => {
    expect(ready(job('replica'), world({ pick: undefined }))).to.equal('n1 (route primary)');
  });

  it('a read whose replica has no ready connection: setup, still routed there', () => {
    expect(ready(job('replica'), world({ replicas: {} }))).to.equal('setup (route replica n2)');
  });

  it('an execute runs on the replica its statement is prepared on, not the one the selector picks (issue 16)', () => {
    const w = world();
    const stmt = statement([w.replicas.n3]);
    expect(ready(job('replica', { command: Command.COM_STMT_EXECUTE, stmt }), w)).to.equal('n3 (route replica n3)');
  });

  it('an execute whose placed replica left the read set goes where the selector picks (prepared there in setup)', () => {
    const w = world({ unavailable: ['n3'] });
    const stmt = statement([w.replicas.n3]);
    expect(ready(job('replica', { command: Command.COM_STMT_EXECUTE, stmt }), w)).to.equal('setup (route replica n2)');
  });

  it('follows the previous statement on its idle, synced connection', () => {
    const w = world();
    w.last = w.replicas.n3;
    expect(ready(job('previous'), w)).to.equal('n3 (route previous)');
  });

  it('previous connection busy or out of sync: the primary', () => {
    const w = world();
    w.last = conn('n3', 'replica', { isIdle: false });
    expect(ready(job('previous'), w)).to.equal('n1 (route primary)');
    w.last = w.replicas.n3;
    w.unsynced = [w.replicas.n3];
    expect(ready(job('previous'), w)).to.equal('n1 (route primary)');
  });

  it('a fixed connection (long data, fetch, reset) is used only when idle and open', () => {
    const fixed = conn('n2', 'replica');
    expect(ready(job('primary', { fixedConn: fixed }), world())).to.equal('n2 (route primary)');
    expect(ready(job('primary', { fixedConn: conn('n2', 'replica', { isIdle: false }) }), world())).to.equal('setup (route primary)');
    expect(ready(job('primary', { fixedConn: conn('n2', 'replica', { isClosed: true }) }), world())).to.equal('setup (route primary)');
  });

  it('a statement not prepared on the connection: setup re-prepares it', () => {
    const stmt = statement([]);
    expect(ready(job('primary', { command: Command.COM_STMT_EXECUTE, stmt }), world())).to.equal('setup (route primary)');
  });

  it('an execute that omits its parameter types on a connection that never got them: setup sends them', () => {
    const w = world();
    const stmt = statement([w.primary as BackendConnection], Buffer.from([3, 0]));
    const layout = { bound: false, boundFlagOffset: 5 } as Job['layout'];
    expect(ready(job('primary', { command: Command.COM_STMT_EXECUTE, stmt, layout }), w)).to.equal('setup (route primary)');
    stmt.placements[0].typesSent = true;
    expect(ready(job('primary', { command: Command.COM_STMT_EXECUTE, stmt, layout }), w)).to.equal('n1 (route primary)');
  });

  it('a text query on a prepare-only connection: setup ends the prepare snapshot first', () => {
    const w = world({ primary: conn('n1', 'primary', { preparedOnly: true }) });
    expect(ready(job('primary'), w)).to.equal('setup (route primary)');
    expect(ready(job('primary', { command: Command.COM_STMT_PREPARE }), w)).to.equal('n1 (route primary)');
  });

  it('a commit token to arm: setup; one to clear on a connection that has none: ready', () => {
    expect(ready(job('primary', { commitPlan: 'token' }), world())).to.equal('setup (route primary)');
    expect(ready(job('primary', { commitPlan: 'clear' }), world())).to.equal('n1 (route primary)');
    expect(ready(job('primary', { commitPlan: 'clear' }), world({ primary: conn('n1', 'primary', { commitMessage: 'doltgate:x' }) }))).to.equal('setup (route primary)');
  });

  it('a write that names another database than the connection has: setup selects it', () => {
    expect(ready(job('primary', { selectDatabase: 'other' }), world())).to.equal('setup (route primary)');
    expect(ready(job('primary', { selectDatabase: 'app' }), world())).to.equal('n1 (route primary)');
  });
});
