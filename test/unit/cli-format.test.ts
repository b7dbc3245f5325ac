/**
 * The CLI's output: tables, the --json shapes scripts depend on (every documented key present,
 * absent values null), live progress lines and their de-duplication, and the mapping from gRPC
 * errors to exit codes. Pure functions on hand-built messages; no network.
 */

import { expect } from 'chai';
import * as grpc from '@grpc/grpc-js';
import type { ClusterStatus, HistoryRecordMessage, Operation, OperationEvent, OperationReply, PauseReply, Step } from '../../proto/control-types';
import { controlErrorCodeKey, makeOpId } from '../../proto/control-types';
import { ExitCode, memoryIo, runCommand, CliError } from '../../cli/cli-io';
import { cliErrorOf, plainReason } from '../../cli/control-client';
import { formatTable, formatTime } from '../../cli/format-table';
import { formatHistory, historyJson } from '../../cli/history';
import { exitCodeOfOutcome, formatDryRun, formatEvent, operationJson, ProgressPrinter, requestJson } from '../../cli/operation-progress';
import { formatPause, pauseJson } from '../../cli/pause';
import { databaseLines, formatStatus, statusJson } from '../../cli/status';

const T = '2024-05-01T12:00:00.000Z';

function status(overrides: Partial<ClusterStatus> = {}): ClusterStatus {
  return {
    cluster: 'prod',
    epoch: 7,
    state: 'stable',
    primary: 'a',
    leader: 'a',
    pause: { paused: false, by: '', at: '', reason: '' },
    lastDecision: { action: 'follow', reason: 'following primary a at epoch 7', waitCode: '' },
    answeredBy: 'b',
    topologyReason: 'switchover to a',
    nodes: [
      {
        name: 'a', sqlAddress: '10.0.0.1:3306', role: 'primary', live: true, healthy: true, consecutiveFailures: 0,
        commitsNotOnRemote: 2, commitsBehindRemote: 0, priority: 100, nofailover: false, grpcAddress: '10.0.0.1:7000', epoch: 7, databases: [],
      },
      {
        name: 'b', sqlAddress: '10.0.0.2:3306', role: 'replica', live: true, healthy: false, consecutiveFailures: 3, lastError: 'connection refused',
        commitsNotOnRemote: 0, commitsBehindRemote: 5, priority: 50, nofailover: true, epoch: 6, databases: [],
      },
      { name: 'c', sqlAddress: '10.0.0.3:3306', role: 'replica', live: false, healthy: false, consecutiveFailures: 0, commitsNotOnRemote: 0, commitsBehindRemote: 0, priority: 0, nofailover: false, epoch: 0, databases: [] },
    ],
    operations: [],
    ...overrides,
  };
}

function step(name: string, state: string, extra: Partial<Step> = {}): Step {
  return { name, state, startedAt: T, detail: '', ...extra };
}

function op(state: string, extra: Partial<Operation> = {}): Operation {
  return { id: 'sw-1', kind: 'switchover', target: 'b', force: false, drainTimeoutMs: 10000, requestedAt: T, requestedBy: 'me@h via a', state, steps: [], reason: '', ...extra };
}

describe('cli formatTable', () => {
  const rows: Array<{ name: string; headers: string[]; rows: string[][]; indent?: string; expected: string }> = [
    { name: 'pads every column but the last, two spaces apart', headers: ['A', 'BB'], rows: [['xxx', 'y'], ['z', 'long']], expected: 'A    BB\nxxx  y\nz    long' },
    { name: 'trims trailing spaces of an empty last cell', headers: ['NAME', 'NOTE'], rows: [['a', '']], expected: 'NAME  NOTE\na' },
    { name: 'indents every line', headers: ['X'], rows: [['1']], indent: '  ', expected: '  X\n  1' },
    { name: 'headers only', headers: ['ONE', 'TWO'], rows: [], expected: 'ONE  TWO' },
  ];
  for (const row of rows) {
    it(row.name, () => expect(formatTable(row.headers, row.rows, row.indent)).to.equal(row.expected));
  }

  it('writes times as UTC to the second, and absent ones as -', () => {
    expect(formatTime('2024-05-01T12:00:01.234Z')).to.equal('2024-05-01 12:00:01Z');
    expect(formatTime(undefined)).to.equal('-');
    expect(formatTime('not a time')).to.equal('not a time');
  });
});

describe('cli status output', () => {
  it('json: every documented field, nulls for absent values', () => {
    const json = statusJson(status({ operations: [op('running', { executor: 'a', steps: [step('fence', 'running')] })] }));
    expect(Object.keys(json)).to.deep.equal(['cluster', 'epoch', 'state', 'primary', 'leader', 'paused', 'pause', 'lastDecision', 'answeredBy', 'topologyReason', 'replication', 'nodes', 'operations', 'proxies']);
    expect(json.proxies, 'none registered').to.deep.equal([]);
    expect(json).to.include({ cluster: 'prod', epoch: 7, state: 'stable', primary: 'a', leader: 'a', paused: false, pause: null, answeredBy: 'b' });
    expect(json.lastDecision).to.deep.equal({ agent: 'b', action: 'follow', waitCode: null, reason: 'following primary a at epoch 7' });
    expect(json.nodes[0]).to.deep.equal({
      name: 'a', sql: '10.0.0.1:3306', role: 'primary', live: true, healthy: true, consecutiveFailures: 0, lastError: null,
      commitsNotOnRemote: 2, commitsBehindRemote: 0, priority: 100, nofailover: false, grpc: '10.0.0.1:7000', epoch: 7, databases: [],
    });
    expect(json.nodes[1]).to.include({ healthy: false, consecutiveFailures: 3, lastError: 'connection refused', nofailover: true, grpc: null });
    expect(json.operations[0]).to.deep.equal({
      id: 'sw-1', kind: 'switchover', target: 'b', force: false, state: 'running', executor: 'a', epoch: null, requestedAt: T, requestedBy: 'me@h via a', reason: '',
      steps: [{ name: 'fence', state: 'running', startedAt: T, endedAt: null, durationMs: null, executor: null, detail: '' }],
    });
  });

  it('databases: one line each, naming nodes that lack it, commits not on the remote, and a database with no remote', () => {
    const base = status();
    const [a, b, c] = base.nodes;
    const nodes = [
      { ...a, databases: [{ name: 'app', commitsNotOnRemote: 0, hasRemote: true }, { name: 'orders', commitsNotOnRemote: 2, hasRemote: true }, { name: 'scratch', commitsNotOnRemote: 1, hasRemote: false }] },
      { ...b, databases: [{ name: 'app', commitsNotOnRemote: 0, hasRemote: true }] },
      c,
    ];
    expect(databaseLines(nodes)).to.deep.equal([
      '',
      'databases:',
      '  app: on a, b',
      '  orders: on a — 2 commit(s) not on the remote yet; not yet on b',
      '  scratch: on a — NO REMOTE on a: not replicated, lost if that node is (set dolt.remote_url_template); not yet on b',
    ]);
    const json = statusJson({ ...base, nodes });
    expect(json.nodes[0].databases[1]).to.deep.equal({ name: 'orders', commitsNotOnRemote: 2, hasRemote: true });
    expect(formatStatus({ ...base, nodes })).to.contain('  orders: on a — 2 commit(s) not on the remote yet; not yet on b');
  });

  it('cluster replication: the header says so, the gap column counts standbys behind, and a database line says how many', () => {
    const base = status({ replication: 'cluster' });
    const [a, b, c] = base.nodes;
    const nodes = [{ ...a, commitsNotOnRemote: 1, databases: [{ name: 'app', commitsNotOnRemote: 1, hasRemote: true }] }, { ...b, databases: [{ name: 'app', commitsNotOnRemote: 0, hasRemote: true }] }, c];
    const text = formatStatus({ ...base, nodes });
    expect(text.split('\n')[0]).to.match(/replication cluster \(Dolt's\)$/);
    expect(text).to.contain('STANDBYS-BEHIND').and.not.contain('NOT-ON-REMOTE');
    expect(databaseLines(nodes, 'cluster')).to.deep.equal(['', 'databases:', '  app: on a, b — 1 standby(s) behind the primary']);
    expect(statusJson({ ...base, nodes }).replication).to.equal('cluster');
    // An agent older than the field: remote.
    expect(statusJson(status()).replication).to.equal('remote');
    expect(formatStatus(status())).to.contain('NOT-ON-REMOTE');
  });

  it('json: a paused cluster without a primary or a decision', () => {
    const json = statusJson(status({ primary: undefined, leader: undefined, state: 'failover', lastDecision: null, pause: { paused: true, by: 'me', at: T, reason: 'upgrade' } }));
    expect(json).to.include({ primary: null, leader: null, paused: true, lastDecision: null });
    expect(json.pause).to.deep.equal({ by: 'me', at: T, reason: 'upgrade' });
  });

  it('table: header lines, one row per node, last errors, recent ops', () => {
    const text = formatStatus(status({ operations: [op('succeeded', { executor: 'a', epoch: 8 })] }));
    const lines = text.split('\n');
    expect(lines[0]).to.equal('cluster prod  epoch 7  state stable  primary a  leader a');
    expect(lines[1]).to.equal('paused: no (automatic failover on)');
    expect(lines[2]).to.equal('topology: switchover to a');
    expect(lines[3]).to.equal('decision of b: follow: following primary a at epoch 7');
    const waiting = formatStatus(status({ lastDecision: { action: 'wait', waitCode: 'anti-flap', reason: 'the last failover was 3 s ago' } })).split('\n');
    expect(waiting[3]).to.equal('decision of b: wait (anti-flap): the last failover was 3 s ago');
    expect(statusJson(status({ lastDecision: { action: 'wait', waitCode: 'paused', reason: 'paused by me' } })).lastDecision).to.deep.equal({ agent: 'b', action: 'wait', waitCode: 'paused', reason: 'paused by me' });
    expect(lines[5]).to.match(/^NODE\s+ROLE\s+SQL\s+HEALTH\s+FAILS\s+NOT-ON-REMOTE\s+BEHIND\s+PRIORITY\s+FLAGS\s+EPOCH\s+GRPC$/);
    expect(lines[6].split(/\s+/)).to.deep.equal(['a', 'primary', '10.0.0.1:3306', 'healthy', '0', '2', '0', '100', '-', '7', '10.0.0.1:7000']);
    expect(lines[7].split(/\s+/)).to.deep.equal(['b', 'replica', '10.0.0.2:3306', 'unhealthy', '3', '0', '5', '50', 'nofailover', '6', '-']);
    expect(lines[8].split(/\s+/)).to.deep.equal(['c', 'replica', '10.0.0.3:3306', 'no', 'agent', '-', '-', '-', '-', '-', '-', '-']);
    expect(lines[9]).to.equal('b: last error: connection refused');
    expect(lines[11]).to.equal('proxies: none registered');
    expect(lines[13]).to.match(/^OPERATION\s+KIND\s+TARGET\s+STATE\s+EXECUTOR\s+EPOCH\s+REQUESTED$/);
    expect(lines[14].split(/\s+/).slice(0, 6)).to.deep.equal(['sw-1', 'switchover', 'b', 'succeeded', 'a', '8']);
  });

  it('proxies: one row each with the epoch and state they applied and how many sessions still drain; the same in json', () => {
    const proxies = [
      { id: 'web-1-4242-a1b2c3', epoch: 8, state: 'switchover', draining: 2, at: T },
      { id: 'web-2-77-d4e5f6', epoch: 7, state: 'stable', draining: 0, at: T },
    ];
    const lines = formatStatus(status({ proxies })).split('\n');
    const header = lines.findIndex((line) => /^PROXY\s+EPOCH\s+STATE\s+DRAINING\s+SINCE$/.test(line));
    expect(header, lines.join('\n')).to.be.greaterThan(0);
    expect(lines[header + 1].split(/\s+/).slice(0, 4)).to.deep.equal(['web-1-4242-a1b2c3', '8', 'switchover', '2']);
    expect(lines[header + 2].split(/\s+/).slice(0, 4)).to.deep.equal(['web-2-77-d4e5f6', '7', 'stable', '0']);
    expect(statusJson(status({ proxies })).proxies).to.deep.equal(proxies);
    // An agent from before the field answers without it.
    expect(statusJson(status({ proxies: undefined })).proxies).to.deep.equal([]);
  });

  it('table: a paused cluster says who paused it and why', () => {
    const text = formatStatus(status({ pause: { paused: true, by: 'me@h via a', at: T, reason: 'upgrade' }, lastDecision: null }));
    expect(text).to.contain('PAUSED by me@h via a at 2024-05-01 12:00:00Z: upgrade (no automatic failover)');
    expect(text).to.contain('decision of b: none yet');
  });
});

describe('cli operation progress', () => {
  const events: Array<{ name: string; event: OperationEvent; line: string }> = [
    { name: 'pending', event: { operation: op('pending'), step: null, final: false }, line: 'op sw-1 pending: waiting for an agent to claim it' },
    { name: 'running with executor', event: { operation: op('running', { executor: 'a' }), step: null, final: false }, line: 'op sw-1 running on a' },
    { name: 'step running', event: { operation: op('running'), step: step('fence', 'running', { executor: 'a' }), final: false }, line: 'fence                 running  on a' },
    {
      name: 'step done with duration and detail',
      event: { operation: op('running'), step: step('recover', 'done', { durationMs: 1200, executor: 'b', detail: 'fast-forwarded main' }), final: false },
      line: 'recover               done     1.2 s  on b: fast-forwarded main',
    },
    { name: 'succeeded', event: { operation: op('succeeded', { epoch: 8, reason: 'b is primary' }), step: null, final: true }, line: 'op sw-1 succeeded at epoch 8: b is primary' },
    { name: 'failed', event: { operation: op('failed', { reason: 'recover: remote unreachable' }), step: null, final: true }, line: 'op sw-1 failed: recover: remote unreachable' },
    { name: 'refused', event: { operation: op('refused', { reason: 'expired' }), step: null, final: true }, line: 'op sw-1 refused: expired' },
  ];
  for (const row of events) {
    it(`line: ${row.name}`, () => expect(formatEvent(row.event)).to.equal(row.line));
  }

  it('printer: a repeated event (after moving to another agent) prints once, with a UTC clock', () => {
    const lines: string[] = [];
    const printer = new ProgressPrinter((line) => lines.push(line), () => Date.parse('2024-05-01T12:00:05Z'));
    const running: OperationEvent = { operation: op('running', { executor: 'a' }), step: null, final: false };
    const fence: OperationEvent = { operation: op('running'), step: step('fence', 'running'), final: false };
    for (const event of [running, fence, running, fence, { ...fence, step: step('fence', 'done', { endedAt: T }) }]) printer.print(event);
    expect(lines).to.deep.equal(['12:00:05  op sw-1 running on a', '12:00:05  fence                 running', '12:00:05  fence                 done']);
  });

  it('exit code of an outcome', () => {
    expect([exitCodeOfOutcome('succeeded'), exitCodeOfOutcome('failed'), exitCodeOfOutcome('refused')]).to.deep.equal([ExitCode.ok, ExitCode.failed, ExitCode.refused]);
  });

  const reply: OperationReply = {
    opId: '', dryRun: true, executor: 'a', candidate: 'b', epoch: 8,
    outline: [{ node: 'a', step: 'fence' }, { node: 'b', step: 'reroute' }], reason: 'switchover (dry run) from a to b at epoch 8', answeredBy: 'c',
  };

  it('dry run: the reason, then the numbered plan', () => {
    expect(formatDryRun(reply).split('\n')).to.deep.equal([
      'dry run (answered by c): switchover (dry run) from a to b at epoch 8',
      'would publish epoch 8 with b as primary; plan:',
      '  1. a             fence',
      '  2. b             reroute',
    ]);
  });

  it('json: request and final operation shapes', () => {
    expect(requestJson('switchover', 'b', reply)).to.deep.equal({
      dryRun: true, opId: null, kind: 'switchover', target: 'b', executor: 'a', candidate: 'b', epoch: 8,
      outline: [{ node: 'a', step: 'fence' }, { node: 'b', step: 'reroute' }], reason: reply.reason, answeredBy: 'c',
    });
    expect(operationJson(op('succeeded', { epoch: 8, target: undefined, steps: [step('fence', 'done', { endedAt: T, durationMs: 0, executor: 'a' })] }))).to.deep.equal({
      id: 'sw-1', kind: 'switchover', target: null, force: false, state: 'succeeded', executor: null, epoch: 8, requestedAt: T, requestedBy: 'me@h via a', reason: '',
      steps: [{ name: 'fence', state: 'done', startedAt: T, endedAt: T, durationMs: 0, executor: 'a', detail: '' }],
    });
  });

  it('op ids are safe and carry their kind', () => {
    expect(makeOpId('switchover', 1_700_000_000_000, () => 0.5)).to.equal('switchover-loyw3v28-8000');
  });
});

describe('cli history and pause output', () => {
  const record: HistoryRecordMessage = {
    epoch: 8, kind: 'failover', reason: 'primary a failed', fromPrimary: 'a', candidate: 'b', handOver: false, opId: undefined,
    takeoverFrom: null, startedAt: '2024-05-01T12:00:00.000Z', endedAt: '2024-05-01T12:00:03.500Z', outcome: 'succeeded',
    steps: [
      { name: 'fence', state: 'done', startedAt: T, endedAt: T, durationMs: 40, executor: 'b', detail: 'epoch 8 published' },
      { name: 'recover', state: 'done', startedAt: T, durationMs: 2100, executor: 'b', detail: '' },
    ],
    orphanedBranches: ['doltgate/orphaned/7/main'],
  };

  it('table: summary line, reason, steps, orphaned branches', () => {
    const lines = formatHistory('prod', [record]).split('\n');
    expect(lines[0]).to.equal('epoch 8  failover  succeeded  a -> b  started 2024-05-01 12:00:00Z  took 3.5 s');
    expect(lines[1]).to.equal('  reason: primary a failed');
    expect(lines[2]).to.match(/^ {2}STEP\s+STATE\s+DURATION\s+NODE\s+STARTED\s+DETAIL$/);
    expect(lines[3]).to.match(/^ {2}fence\s+done\s+40 ms\s+b\s+2024-05-01 12:00:00Z\s+epoch 8 published$/);
    expect(lines[4]).to.match(/^ {2}recover\s+done\s+2\.1 s\s+b\s+2024-05-01 12:00:00Z\s+-$/);
    expect(lines[5]).to.equal('  orphaned branches: doltgate/orphaned/7/main');
  });

  it('table: no history', () => {
    expect(formatHistory('prod', [])).to.equal('cluster prod has no failover history yet');
  });

  it('json: nulls for absent values, duration computed', () => {
    const json = historyJson(record);
    expect(json).to.include({ epoch: 8, fromPrimary: 'a', opId: null, endedAt: '2024-05-01T12:00:03.500Z', durationMs: 3500, takeoverFrom: null });
    expect(json.steps[1]).to.deep.equal({ name: 'recover', state: 'done', startedAt: T, endedAt: null, durationMs: 2100, executor: 'b', detail: '' });
    expect(json.orphanedBranches).to.deep.equal(['doltgate/orphaned/7/main']);
  });

  it('pause: text and json', () => {
    const reply: PauseReply = { pause: { paused: true, by: 'me via a', at: T, reason: 'upgrade' }, answeredBy: 'a' };
    expect(formatPause('prod', reply)).to.equal("cluster prod paused by me via a at 2024-05-01 12:00:00Z: upgrade\nno automatic failover until 'doltgate resume'");
    expect(pauseJson('prod', reply)).to.deep.equal({ cluster: 'prod', paused: true, pause: { by: 'me via a', at: T, reason: 'upgrade' }, answeredBy: 'a' });
    expect(pauseJson('prod', { pause: { paused: false, by: '', at: '', reason: '' }, answeredBy: 'a' })).to.deep.equal({ cluster: 'prod', paused: false, pause: null, answeredBy: 'a' });
  });
});

describe('cli errors and exit codes', () => {
  function serviceError(code: grpc.status, details: string, doltgateCode?: string): grpc.ServiceError {
    const metadata = new grpc.Metadata();
    if (doltgateCode !== undefined) metadata.set(controlErrorCodeKey, doltgateCode);
    return Object.assign(new Error(details), { code, details, metadata });
  }

  const rows: Array<{ name: string; error: grpc.ServiceError; exitCode: number; message: RegExp }> = [
    { name: 'unknown node → 5', error: serviceError(grpc.status.INVALID_ARGUMENT, 'unknown node "x"', 'unknown-node'), exitCode: ExitCode.unknownNode, message: /^unknown node "x"$/ },
    { name: 'refused → 3 with the reason, saying "refused" once', error: serviceError(grpc.status.FAILED_PRECONDITION, 'switchover refused: b has nofailover', 'refused'), exitCode: ExitCode.refused, message: /^switchover refused: b has nofailover$/ },
    { name: 'refused without the word → 3, prefixed', error: serviceError(grpc.status.FAILED_PRECONDITION, 'the cluster is paused', 'refused'), exitCode: ExitCode.refused, message: /^refused: the cluster is paused$/ },
    { name: 'op in progress → 3', error: serviceError(grpc.status.FAILED_PRECONDITION, 'op x is pending', 'op-in-progress'), exitCode: ExitCode.refused, message: /pending/ },
    { name: 'missing token → 2', error: serviceError(grpc.status.UNAUTHENTICATED, 'pause needs the token', 'unauthenticated'), exitCode: ExitCode.usage, message: /token/ },
    { name: 'bad request → 2', error: serviceError(grpc.status.INVALID_ARGUMENT, 'bad', 'bad-request'), exitCode: ExitCode.usage, message: /bad/ },
    { name: 'unavailable → 4', error: serviceError(grpc.status.UNAVAILABLE, 'etcd unavailable', 'etcd-unavailable'), exitCode: ExitCode.unreachable, message: /etcd/ },
    { name: 'op unclaimed → 1', error: serviceError(grpc.status.DEADLINE_EXCEEDED, 'no agent claimed it', 'op-unclaimed'), exitCode: ExitCode.failed, message: /claimed/ },
    { name: 'internal → 1', error: serviceError(grpc.status.INTERNAL, 'boom'), exitCode: ExitCode.failed, message: /boom/ },
  ];
  for (const row of rows) {
    it(row.name, () => {
      const error = cliErrorOf(row.error);
      expect(error.exitCode).to.equal(row.exitCode);
      expect(error.message).to.match(row.message);
    });
  }

  const reasons: Array<{ name: string; text: string; expected: string }> = [
    {
      name: 'grpc-js connection refused',
      text: '14 UNAVAILABLE: No connection established. Last error: Error: connect ECONNREFUSED 127.0.0.1:2379. Resolution note: ',
      expected: 'connection refused (ECONNREFUSED 127.0.0.1:2379)',
    },
    {
      name: "an agent's etcd error keeps its context",
      text: '14 UNAVAILABLE: etcd unavailable while trying to read the cluster state: 14 UNAVAILABLE: No connection established. Last error: Error: connect ECONNREFUSED 127.0.0.1:1. Resolution note: ',
      expected: 'etcd unavailable while trying to read the cluster state: connection refused (ECONNREFUSED 127.0.0.1:1)',
    },
    { name: 'timeout', text: 'connect ETIMEDOUT 10.0.0.9:7000', expected: 'connection timed out (ETIMEDOUT 10.0.0.9:7000)' },
    { name: 'status prefix only', text: '14 UNAVAILABLE: etcd unavailable while trying to read the cluster state', expected: 'etcd unavailable while trying to read the cluster state' },
    { name: 'plain text unchanged', text: 'reading the member records: no answer within 1000 ms', expected: 'reading the member records: no answer within 1000 ms' },
  ];
  for (const row of reasons) {
    it(`plain reason: ${row.name}`, () => expect(plainReason(row.text)).to.equal(row.expected));
  }

  it('runCommand prints the error on stderr and, with --json, an error object on stdout', async () => {
    const io = memoryIo();
    const code = await runCommand('pause', io, () => true, async () => {
      throw new CliError(ExitCode.unreachable, 'cannot reach etcd at http://x:1');
    });
    expect(code).to.equal(ExitCode.unreachable);
    expect(io.stderr).to.deep.equal(['doltgate pause: cannot reach etcd at http://x:1']);
    expect(JSON.parse(io.stdout[0])).to.deep.equal({ error: { exitCode: 4, kind: 'unreachable', message: 'cannot reach etcd at http://x:1' } });
  });
});
