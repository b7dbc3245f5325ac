/**
 * The control server's pure parts, which decide what the CLI is told: judging a switchover or
 * failover request against a snapshot (dry run, op to write, the op a retry already wrote, or the
 * error and its code), the status message built from a snapshot, and the progress events between
 * two versions of an op — plus the watch loop on a scripted store. Rows are named after the
 * expected answer.
 */

import { expect } from 'chai';
import { ControlError } from '../../agent/control/control-error';
import { clusterStatus } from '../../agent/control/control-messages';
import { judgeOpRequest, type JudgeContext, type OpRequest } from '../../agent/control/op-request';
import { operationEvents, watchOperation } from '../../agent/control/operation-watch';
import { haConfig } from '../../agent/ha/config';
import { StoreUnavailableError, type ClusterSnapshot, type ClusterStore } from '../../agent/store/cluster-store';
import type { MemberRecord, OperationRecord, Topology } from '../../proto';
import type { OperationEvent } from '../../proto/control-types';
import { snapshotOf } from './ha-fixtures.test';

const T0 = Date.parse('2024-05-01T12:00:00.000Z');
const config = haConfig();

function member(name: string, extra: Partial<MemberRecord> = {}, health: Partial<MemberRecord['health']> = {}): MemberRecord {
  return {
    name,
    sql: { host: '127.0.0.1', port: 3300 + name.charCodeAt(0) - 96 },
    grpc: `127.0.0.1:${7000 + name.charCodeAt(0) - 96}`,
    role: 'replica',
    epoch: 7,
    health: { healthy: true, consecutiveFailures: 0, lastCheckAt: new Date(T0).toISOString(), sqlLatencyMs: 1, lastError: null, hostReachable: true, ...health },
    heads: {},
    remoteHeads: {},
    commitsNotOnRemote: 0,
    commitsBehindRemote: 0,
    priority: 100,
    nofailover: false,
    backup: null,
    updatedAt: new Date(T0).toISOString(),
    ...extra,
  };
}

function opRecord(extra: Partial<OperationRecord> = {}): OperationRecord {
  return {
    id: 'op-1', kind: 'switchover', target: 'b', force: false, drainTimeoutMs: 10_000, requestedAt: new Date(T0).toISOString(), requestedBy: 'me via a',
    state: 'pending', executor: null, epoch: null, steps: [], reason: '', ...extra,
  };
}

/** a primary (holds the key), b healthy replica, c nofailover, d unhealthy, e in the topology without an agent. */
function snapshot(extra: Partial<ClusterSnapshot> = {}): ClusterSnapshot {
  const nodes: Topology['nodes'] = {};
  for (const name of ['a', 'b', 'c', 'd', 'e']) nodes[name] = { sql: { host: '127.0.0.1', port: 3300 + name.charCodeAt(0) - 96 }, role: name === 'a' ? 'primary' : 'replica' };
  return snapshotOf({
    revision: '10',
    leader: { name: 'a', lease: '1' },
    topology: { value: { epoch: 7, state: 'stable', primary: 'a', nodes, reason: 'bootstrap', at: new Date(T0).toISOString() }, modRevision: '5' },
    members: {
      a: member('a', { role: 'primary' }),
      b: member('b'),
      c: member('c', { nofailover: true }),
      d: member('d', {}, { healthy: false, consecutiveFailures: 3, lastError: 'connection refused' }),
    },
    ...extra,
  });
}

const context: JudgeContext = { cluster: 'prod', agentName: 'b', config, now: T0, newOpId: (kind) => `${kind}-new` };

function request(extra: Partial<OpRequest> = {}): OpRequest {
  return { kind: 'switchover', target: 'b', force: false, dryRun: false, drainTimeoutMs: null, requestedBy: 'me@h', opId: null, ...extra };
}

describe('control judgeOpRequest', () => {
  it('write: a switchover to a healthy replica becomes a pending op with the judgement as reason', () => {
    const judgement = judgeOpRequest(snapshot(), request({ opId: 'sw-7' }), context);
    expect(judgement.outcome).to.equal('write');
    if (judgement.outcome !== 'write') return;
    expect(judgement.op).to.deep.equal({
      id: 'sw-7', kind: 'switchover', target: 'b', force: false, drainTimeoutMs: 10_000, requestedAt: '2024-05-01T12:00:00.000Z', requestedBy: 'me@h via b',
      state: 'pending', executor: null, epoch: null, steps: [], reason: judgement.reply.reason,
    });
    expect(judgement.reply).to.include({ opId: 'sw-7', dryRun: false, executor: 'a', candidate: 'b', epoch: 8, answeredBy: 'b' });
    expect(judgement.reply.reason).to.match(/^switchover sw-7 from a to b at epoch 8: a fences/);
    expect(judgement.reply.outline.map((s) => `${s.node} ${s.step}`)).to.deep.equal(['a fence', 'b disable-read-only', 'b recover', 'b enable-push-on-write', 'b reroute']);
  });

  it('dry-run: the same judgement, no op, labelled (dry run)', () => {
    const judgement = judgeOpRequest(snapshot(), request({ dryRun: true, opId: 'ignored' }), context);
    expect(judgement.outcome).to.equal('dry-run');
    expect(judgement.reply).to.include({ opId: '', dryRun: true, executor: 'a', candidate: 'b', epoch: 8 });
    expect(judgement.reply.reason).to.match(/^switchover \(dry run\) from a to b/);
  });

  it('write: an agent-made id when the client sends none; failovers record no drain time', () => {
    const judgement = judgeOpRequest(snapshot({ leader: null }), request({ kind: 'failover', target: null, drainTimeoutMs: 5000 }), context);
    expect(judgement.outcome).to.equal('write');
    if (judgement.outcome === 'write') expect(judgement.op).to.include({ id: 'failover-new', drainTimeoutMs: 0, target: null });
  });

  it('existing: a retry with the same op id returns the op already written', () => {
    const existing = opRecord({ id: 'sw-7', reason: 'first judgement' });
    const judgement = judgeOpRequest(snapshot({ ops: [{ value: existing, modRevision: '11' }] }), request({ opId: 'sw-7' }), context);
    expect(judgement.outcome).to.equal('existing');
    expect(judgement.reply).to.include({ opId: 'sw-7', reason: 'first judgement' });
  });

  const errors: Array<{ name: string; snapshot?: Partial<ClusterSnapshot>; request: Partial<OpRequest>; code: string; message: RegExp }> = [
    { name: 'unknown-node: a name in neither topology nor members', request: { target: 'zz' }, code: 'unknown-node', message: /^unknown node "zz": cluster prod has nodes a, b, c, d, e$/ },
    { name: 'unknown-node: a malformed name', request: { target: 'B B' }, code: 'unknown-node', message: /unknown node "B B"/ },
    { name: 'refused: target has nofailover', request: { target: 'c' }, code: 'refused', message: /refused: target c has nofailover \(--force does not override it/ },
    { name: 'refused: target unhealthy', request: { target: 'd' }, code: 'refused', message: /refused: target d is unhealthy \(3 failed checks: connection refused\); use --force/ },
    { name: 'refused: target without a live agent', request: { target: 'e' }, code: 'refused', message: /refused: target e has no live agent/ },
    { name: 'refused: switchover to the primary itself', request: { target: 'a' }, code: 'refused', message: /refused: target a is the current primary/ },
    { name: 'refused: failover from a healthy primary without --force', request: { kind: 'failover', target: 'b' }, code: 'refused', message: /use switchover, or --force/ },
    { name: 'refused: paused failover without a target', snapshot: { paused: { by: 'me', at: '', reason: 'x' } }, request: { kind: 'failover', target: null, force: true }, code: 'refused', message: /the cluster is paused: name a target/ },
    { name: 'refused: not bootstrapped', snapshot: { topology: null, leader: null }, request: { target: 'b' }, code: 'refused', message: /no topology yet/ },
    {
      name: 'op-in-progress: another op is pending',
      snapshot: { ops: [{ value: opRecord({ id: 'other', target: 'c' }), modRevision: '9' }] },
      request: { target: 'b' },
      code: 'op-in-progress',
      message: /^switchover switchover-new refused: switchover other to c is pending/,
    },
    {
      name: 'op-in-progress: another op is running on a live agent',
      snapshot: { ops: [{ value: opRecord({ id: 'other', state: 'running', executor: 'a' }), modRevision: '9' }] },
      request: { target: 'b', dryRun: true },
      code: 'op-in-progress',
      message: /switchover \(dry run\) refused: switchover other to b is running on a/,
    },
    { name: 'bad-request: switchover without target', request: { target: null }, code: 'bad-request', message: /needs a target/ },
    { name: 'bad-request: malformed op id', request: { opId: 'a/b' }, code: 'bad-request', message: /op id "a\/b" is invalid/ },
    { name: 'bad-request: drain timeout above the limit', request: { drainTimeoutMs: 3_600_000 }, code: 'bad-request', message: /above the limit/ },
    {
      name: 'bad-request: op id reused for a different op',
      snapshot: { ops: [{ value: opRecord({ id: 'sw-7', target: 'c', state: 'succeeded' }), modRevision: '9' }] },
      request: { opId: 'sw-7', target: 'b' },
      code: 'bad-request',
      message: /already names a different op/,
    },
  ];
  for (const row of errors) {
    it(row.name, () => {
      const run = (): unknown => judgeOpRequest(snapshot(row.snapshot), request(row.request), context);
      expect(run).to.throw(ControlError, row.message).with.property('code', row.code);
    });
  }

  it('not blocking: an expired pending op, a running op whose executor is gone, one left running past the op timeout', () => {
    const longAgo = new Date(T0 - config.opTimeoutMs - 1).toISOString();
    const expired = opRecord({ id: 'old', requestedAt: longAgo });
    const orphaned = opRecord({ id: 'orphan', state: 'running', executor: 'gone' });
    const unclosed = opRecord({ id: 'unclosed', state: 'running', executor: 'a', requestedAt: longAgo });
    const ops = [expired, orphaned, unclosed].map((value) => ({ value, modRevision: '9' }));
    expect(judgeOpRequest(snapshot({ ops }), request(), context).outcome).to.equal('write');
  });
});

describe('control clusterStatus', () => {
  it('merges topology and members, applying the HA health rule', () => {
    const status = clusterStatus(snapshot({ paused: { by: 'me', at: 'now', reason: 'upgrade' } }), { cluster: 'prod', agentName: 'b', config, lastDecision: { action: 'follow', reason: 'r', waitCode: '' } });
    expect(status).to.include({ cluster: 'prod', epoch: 7, state: 'stable', primary: 'a', leader: 'a', answeredBy: 'b', topologyReason: 'bootstrap' });
    expect(status.pause).to.deep.equal({ paused: true, by: 'me', at: 'now', reason: 'upgrade' });
    expect(status.nodes.map((n) => `${n.name}:${n.role}:${n.live ? 'live' : 'gone'}:${n.healthy ? 'ok' : 'bad'}`)).to.deep.equal([
      'a:primary:live:ok', 'b:replica:live:ok', 'c:replica:live:ok', 'd:replica:live:bad', 'e:replica:gone:bad',
    ]);
    expect(status.nodes[3]).to.include({ consecutiveFailures: 3, lastError: 'connection refused', grpcAddress: '127.0.0.1:7004', sqlAddress: '127.0.0.1:3304' });
    expect(status.nodes[4].grpcAddress).to.equal(undefined);
  });

  it('none: no topology yet', () => {
    const status = clusterStatus(snapshot({ topology: null, leader: null }), { cluster: 'prod', agentName: 'b', config, lastDecision: null });
    expect(status).to.include({ state: 'none', epoch: 0, primary: undefined, leader: undefined });
    expect(status.nodes.map((n) => n.name)).to.deep.equal(['a', 'b', 'c', 'd']);
  });
});

describe('control operationEvents', () => {
  const step = (name: string, state: 'running' | 'done' | 'failed', detail = '') => ({ name, state, startedAt: new Date(T0).toISOString(), endedAt: state === 'running' ? null : new Date(T0 + 500).toISOString(), detail });
  const describeEvents = (events: OperationEvent[]): string[] => events.map((e) => (e.step ? `step ${e.step.name} ${e.step.state}` : `op ${e.operation?.state}${e.final ? ' final' : ''}`));

  const rows: Array<{ name: string; previous: OperationRecord | null; next: OperationRecord; expected: string[] }> = [
    { name: 'first read of a pending op: its state', previous: null, next: opRecord(), expected: ['op pending'] },
    {
      name: 'first read of a running op: state first, then every step',
      previous: null,
      next: opRecord({ state: 'running', executor: 'a', steps: [step('fence', 'done'), step('disable-read-only', 'running')] }),
      expected: ['op running', 'step fence done', 'step disable-read-only running'],
    },
    { name: 'claimed: pending to running', previous: opRecord(), next: opRecord({ state: 'running', executor: 'a' }), expected: ['op running'] },
    {
      name: 'a step finished and the next began: two step events',
      previous: opRecord({ state: 'running', executor: 'a', steps: [step('fence', 'running')] }),
      next: opRecord({ state: 'running', executor: 'a', steps: [step('fence', 'done'), step('recover', 'running')] }),
      expected: ['step fence done', 'step recover running'],
    },
    {
      name: 'a detail update of a running step is an event',
      previous: opRecord({ state: 'running', steps: [step('fence', 'running', 'draining 3')] }),
      next: opRecord({ state: 'running', steps: [step('fence', 'running', 'draining 1')] }),
      expected: ['step fence running'],
    },
    { name: 'nothing changed: no events', previous: opRecord({ state: 'running', steps: [step('fence', 'running')] }), next: opRecord({ state: 'running', steps: [step('fence', 'running')] }), expected: [] },
    {
      name: 'final: steps first, the final state last',
      previous: opRecord({ state: 'running', executor: 'b', steps: [step('reroute', 'running')] }),
      next: opRecord({ state: 'succeeded', executor: 'b', epoch: 8, steps: [step('reroute', 'done')] }),
      expected: ['step reroute done', 'op succeeded final'],
    },
    { name: 'refused before any step: one final event', previous: opRecord(), next: opRecord({ state: 'refused', reason: 'expired' }), expected: ['op refused final'] },
  ];
  for (const row of rows) {
    it(row.name, () => expect(describeEvents(operationEvents(row.previous, row.next))).to.deep.equal(row.expected));
  }
});

describe('control watchOperation (scripted store)', () => {
  /** A store whose snapshot() answers from a script, one entry per read; the last repeats. */
  function scriptedStore(script: Array<OperationRecord | null | 'down'>): ClusterStore {
    let read = 0;
    const store: Partial<ClusterStore> = {
      cluster: 'prod',
      snapshot: async () => {
        const entry = script[Math.min(read++, script.length - 1)];
        if (entry === 'down') throw new StoreUnavailableError('read the cluster state', new Error('connection refused'));
        return snapshot({ ops: entry === null ? [] : [{ value: entry, modRevision: String(read) }] });
      },
    };
    return store as ClusterStore;
  }

  async function watch(script: Array<OperationRecord | null | 'down'>, options: { unclaimedAfterMs?: number; unavailableAfterMs?: number; now?: () => number } = {}): Promise<{ events: string[]; error: ControlError | null }> {
    const events: string[] = [];
    try {
      await watchOperation({
        store: scriptedStore(script), opId: 'op-1', pollMs: 1, unclaimedAfterMs: options.unclaimedAfterMs ?? 60_000, unavailableAfterMs: options.unavailableAfterMs ?? 60_000,
        emit: (e) => events.push(e.step ? `step ${e.step.name} ${e.step.state}` : `op ${e.operation?.state}${e.final ? ' final' : ''}`),
        cancelled: () => false, now: options.now ?? (() => T0),
      });
      return { events, error: null };
    } catch (error) {
      return { events, error: error as ControlError };
    }
  }

  it('final: rides out an etcd blip and ends at the final state', async () => {
    const running = opRecord({ state: 'running', executor: 'a', steps: [{ name: 'fence', state: 'running', startedAt: '', endedAt: null, detail: '' }] });
    const result = await watch([opRecord(), 'down', running, running, opRecord({ state: 'succeeded', executor: 'a', epoch: 8, steps: [{ name: 'fence', state: 'done', startedAt: '', endedAt: '', detail: '' }] })]);
    expect(result.error).to.equal(null);
    expect(result.events).to.deep.equal(['op pending', 'op running', 'step fence running', 'step fence done', 'op succeeded final']);
  });

  it('op-not-found: an id etcd does not hold', async () => {
    const result = await watch([null]);
    expect(result.error).to.have.property('code', 'op-not-found');
    expect(result.error?.message).to.equal('op op-1 does not exist in etcd');
  });

  it('op-unclaimed: pending past the limit', async () => {
    const result = await watch([opRecord()], { unclaimedAfterMs: 1000, now: () => T0 + 2000 });
    expect(result.events).to.deep.equal(['op pending']);
    expect(result.error).to.have.property('code', 'op-unclaimed');
    expect(result.error?.message).to.match(/still pending after 2\.0 s: no agent claimed it/);
  });

  it('etcd-unavailable: etcd gone for longer than the limit', async () => {
    let clock = T0;
    const result = await watch(['down'], { unavailableAfterMs: 50, now: () => (clock += 10) });
    expect(result.error).to.have.property('code', 'etcd-unavailable');
  });
});
