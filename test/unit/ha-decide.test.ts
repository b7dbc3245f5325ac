/**
 * decide(): one table, one row per situation, each named after the expected answer and
 * asserting the action, the fields the loop acts on, and the reason a person reads. Then a
 * property over many rows: on one snapshot, at most one agent campaigns.
 *
 * Cluster of the rows unless said otherwise: a primary, b and c replicas, epoch 7, all healthy,
 * priority 100; the failover interval is 60 s, the fence margin 3 s, the lag limit 100.
 */

import { expect } from 'chai';
import { decide } from '../../agent/ha/decide';
import { haConfig, type HaConfig } from '../../agent/ha/config';
import type { Action, Decision, WaitCode } from '../../agent/ha/decision';
import { failoverSteps } from '../../agent/ha/steps';
import { cluster, config, observe, T0, type NodeSpec, type Scenario } from './ha-fixtures.test';

interface Row {
  name: string;
  scenario: Scenario;
  expect: { action: Action; code?: WaitCode } & Record<string, unknown>;
  reason: RegExp;
  config?: Partial<HaConfig>;
}

/** a is gone (no live agent); b and c as given. */
function aDead(b: NodeSpec = {}, c: NodeSpec = {}): Record<string, NodeSpec> {
  return { a: { role: 'primary', live: false }, b, c };
}

const all = [...failoverSteps];

/** A failover to b at epoch 8 whose fence and disable-read-only are done. */
function midFailover(self: string, extra: Partial<Scenario> = {}): Scenario {
  return cluster(self, {
    nodes: aDead(),
    topology: { epoch: 8, primary: null, state: 'failover' },
    leader: 'b',
    inProgress: { candidate: 'b', epoch: 8, completedSteps: ['fence', 'disable-read-only'] },
    ...extra,
  });
}

/** A switchover a → c at epoch 8 (op-1), a handing over; `fenced` once a ran the fence. */
function handOver(self: string, fenced: boolean, extra: Partial<Scenario> = {}): Scenario {
  return cluster(self, {
    topology: fenced ? { epoch: 8, primary: null, state: 'switchover' } : { epoch: 7, primary: 'a' },
    inProgress: { kind: 'switchover', candidate: 'c', fromPrimary: 'a', handOver: true, opId: 'op-1', epoch: 8, completedSteps: fenced ? ['fence'] : [] },
    ...extra,
  });
}

const bootNodes: Record<string, NodeSpec> = { a: { epoch: 0 }, b: { epoch: 0 }, c: { epoch: 0 } };
function boot(self: string, extra: Partial<Scenario> = {}): Scenario {
  return { self, nodes: bootNodes, topology: null, leader: null, selfView: { epoch: 0 }, ...extra };
}

const primaryRows: Row[] = [
  { name: 'healthy primary holding its lease', scenario: cluster('a'), expect: { action: 'renew-lease' }, reason: /^primary at epoch 7; lease valid for 7\.0 s before fencing$/ },
  {
    name: 'one failed check is below the threshold: keep serving, say so',
    scenario: cluster('a', { nodes: { a: { role: 'primary', healthy: false, failures: 1 }, b: {}, c: {} } }),
    expect: { action: 'renew-lease' },
    reason: /; 1 failed health check \(fences at 3\)$/,
  },
  {
    name: 'lease ends within the margin: fence before it lapses, keep the key',
    scenario: cluster('a', { leaseLeftMs: 2_500 }),
    expect: { action: 'fence-self', releaseLeader: false },
    reason: /^the leader lease ends in 2\.5 s without a renewal \(fence margin 3\.0 s\): fence before it lapses$/,
  },
  { name: 'exactly at the margin counts as too late', scenario: cluster('a', { leaseLeftMs: 3_000 }), expect: { action: 'fence-self' }, reason: /ends in 3\.0 s/ },
  { name: 'lease already lapsed', scenario: cluster('a', { leaseLeftMs: -1_500 }), expect: { action: 'fence-self', releaseLeader: false }, reason: /^the leader lease lapsed 1\.5 s ago without a renewal: fence$/ },
  { name: 'no lease deadline known', scenario: cluster('a', { leaseLeftMs: null }), expect: { action: 'fence-self' }, reason: /knows no lease deadline/ },
  {
    name: 'own Dolt failed N checks: fence and release',
    scenario: cluster('a', { nodes: { a: { role: 'primary', healthy: false, failures: 3, lastError: 'connection refused' }, b: {}, c: {} } }),
    expect: { action: 'fence-self', releaseLeader: true },
    reason: /^this node's Dolt failed 3 consecutive health checks \(threshold 3; last error: connection refused\): fence it and release the leader key$/,
  },
  {
    name: 'etcd unreachable but the lease has time left: serve on the lease',
    scenario: cluster('a', { etcd: { reachable: false, hasQuorum: false }, leaseLeftMs: 7_000 }),
    expect: { action: 'renew-lease' },
    reason: /^etcd is unreachable: keep serving on the lease \(4\.0 s before fencing\) and retry the renewal$/,
  },
  {
    name: 'etcd unreachable and the lease at the margin: a partitioned primary stops writing',
    scenario: cluster('a', { etcd: { reachable: false, hasQuorum: false }, leaseLeftMs: 2_000 }),
    expect: { action: 'fence-self', releaseLeader: false },
    reason: /^the leader lease ends in 2\.0 s/,
  },
  {
    name: 'etcd without quorum, lease valid',
    scenario: cluster('a', { etcd: { reachable: true, hasQuorum: false } }),
    expect: { action: 'renew-lease' },
    reason: /^etcd has no quorum: keep serving on the lease/,
  },
  {
    name: 'holds lease and topology but Dolt takes no writes: recover in place at a new epoch, so proxies hold writes meanwhile',
    scenario: cluster('a', { selfView: { writable: false } }),
    expect: { action: 'start-failover', epoch: 8, candidate: 'a', fromPrimary: 'a', steps: all, releaseLeaderAfter: false },
    reason:
      /^this node holds the leader lease and is primary at epoch 7 but its Dolt does not take writes: recover in place at epoch 8 \(fence, disable-read-only, recover, enable-push-on-write, reroute\)$/,
  },
  {
    name: 'read-only leader with a failing check does not unfence',
    scenario: cluster('a', { selfView: { writable: false, healthy: false, failures: 1 } }),
    expect: { action: 'wait', code: 'self-unhealthy' },
    reason: /not unfencing; it releases the key at 3 failed checks$/,
  },
  {
    name: 'writable while another node holds the key',
    scenario: cluster('a', { leader: 'b', selfView: { writable: true } }),
    expect: { action: 'fence-self', releaseLeader: false },
    reason: /^this node's Dolt is writable but b holds the leader key: only the leader-lease holder may take writes$/,
  },
  {
    name: 'a replica found writable with the key vacant',
    scenario: cluster('b', { leader: null, selfView: { writable: true } }),
    expect: { action: 'fence-self' },
    reason: /writable but the leader key is vacant/,
  },
];

const replicaRows: Row[] = [
  { name: 'healthy replica, stable topology', scenario: cluster('b'), expect: { action: 'follow', primary: 'a', epoch: 7 }, reason: /^following primary a at epoch 7$/ },
  {
    name: 'replica with a stale epoch records the new one',
    scenario: cluster('b', { nodes: { a: { role: 'primary' }, b: { epoch: 5 }, c: {} } }),
    expect: { action: 'follow', epoch: 7 },
    reason: /^following primary a at epoch 7 \(this node had acted on epoch 5\)$/,
  },
  {
    name: 'primary reports a failing check but holds the key: keep following',
    scenario: cluster('b', { nodes: { a: { role: 'primary', healthy: false, failures: 1 }, b: {}, c: {} } }),
    expect: { action: 'follow' },
    reason: /\(a reports 1 failed check; its agent fences it at 3\)$/,
  },
  {
    name: 'replica whose own Dolt is unhealthy',
    scenario: cluster('b', { nodes: { a: { role: 'primary' }, b: { healthy: false }, c: {} } }),
    expect: { action: 'wait', code: 'self-unhealthy' },
    reason: /^replica of a at epoch 7, but this node's Dolt is unhealthy \(3 failed checks\)$/,
  },
];

const failoverRows: Row[] = [
  {
    name: 'leader key gone, primary gone: the chosen candidate fails over',
    scenario: cluster('b', { nodes: aDead(), leader: null }),
    expect: { action: 'start-failover', candidate: 'b', fromPrimary: 'a', epoch: 8, kind: 'failover', steps: all, takeoverFrom: null, releaseLeaderAfter: false },
    reason: /^primary a lost the leader key \(a has no live agent\); this node is the chosen candidate \(priority 100, 0 commits behind the remote\): fail over at epoch 8$/,
  },
  {
    name: 'leader key gone: a replica that is not chosen names the candidate',
    scenario: cluster('c', { nodes: aDead(), leader: null }),
    expect: { action: 'wait', code: 'not-candidate' },
    reason: /^node b is the chosen candidate \(priority 100, 0 commits behind the remote\); this node ranks 2nd$/,
  },
  {
    name: 'different priorities: c (100) over b (50)',
    scenario: cluster('c', { nodes: aDead({ priority: 50 }, { priority: 100 }), leader: null }),
    expect: { action: 'start-failover', candidate: 'c' },
    reason: /this node is the chosen candidate \(priority 100, 0 commits behind the remote\)/,
  },
  {
    name: 'different priorities: b waits for c',
    scenario: cluster('b', { nodes: aDead({ priority: 50 }, { priority: 100 }), leader: null }),
    expect: { action: 'wait', code: 'not-candidate' },
    reason: /^node c is the chosen candidate \(priority 100, 0 commits behind the remote\); this node ranks 2nd$/,
  },
  {
    name: 'same priority, c less behind the remote',
    scenario: cluster('c', { nodes: aDead({ behind: 5 }, { behind: 0 }), leader: null }),
    expect: { action: 'start-failover', candidate: 'c' },
    reason: /chosen candidate/,
  },
  {
    name: 'same priority: b is 5 behind and waits',
    scenario: cluster('b', { nodes: aDead({ behind: 5 }, { behind: 0 }), leader: null }),
    expect: { action: 'wait', code: 'not-candidate' },
    reason: /^node c is the chosen candidate/,
  },
  {
    name: 'b over the lag limit says why it is excluded',
    scenario: cluster('b', { nodes: aDead({ behind: 500 }), leader: null }),
    expect: { action: 'wait', code: 'not-candidate' },
    reason: /^node c is the chosen candidate \(priority 100, 0 commits behind the remote\); this node is excluded: b is 500 commits behind the remote \(limit 100\)$/,
  },
  {
    name: 'nofailover b waits',
    scenario: cluster('b', { nodes: aDead({ nofailover: true }), leader: null }),
    expect: { action: 'wait', code: 'not-candidate' },
    reason: /this node is excluded: b has nofailover$/,
  },
  {
    name: 'nofailover b: c is chosen instead',
    scenario: cluster('c', { nodes: aDead({ nofailover: true }), leader: null }),
    expect: { action: 'start-failover', candidate: 'c' },
    reason: /chosen candidate/,
  },
  {
    name: 'nobody eligible: b unhealthy, c nofailover',
    scenario: cluster('c', { nodes: aDead({ healthy: false }, { nofailover: true }), leader: null }),
    expect: { action: 'wait', code: 'no-eligible-candidate' },
    reason: /^no eligible candidate to replace a: b is unhealthy \(3 failed checks\), c has nofailover$/,
  },
  {
    name: 'chosen by the records but its own fresher check fails',
    scenario: cluster('b', { nodes: aDead(), leader: null, selfView: { healthy: false, failures: 1 } }),
    expect: { action: 'wait', code: 'self-unhealthy' },
    reason: /^this node is the chosen candidate by the member records but its own Dolt is unhealthy \(1 failed check\): not campaigning$/,
  },
  {
    name: 'paused',
    scenario: cluster('b', { nodes: aDead(), leader: null, paused: true }),
    expect: { action: 'wait', code: 'paused' },
    reason: /^cluster is paused: no automatic failover from a \(resume, or run doltgate failover --to <node>\)$/,
  },
  { name: 'etcd unreachable: no promotion', scenario: cluster('b', { nodes: aDead(), leader: null, etcd: { reachable: false, hasQuorum: false } }), expect: { action: 'wait', code: 'etcd-unreachable' }, reason: /^etcd is unreachable: no promotion$/ },
  { name: 'etcd without quorum: no promotion', scenario: cluster('b', { nodes: aDead(), leader: null, etcd: { reachable: true, hasQuorum: false } }), expect: { action: 'wait', code: 'no-quorum' }, reason: /^etcd has no quorum: no promotion$/ },
  {
    name: 'second failure inside the anti-flap window, the primary agent alive: it recovers in place',
    scenario: cluster('b', { nodes: { a: { role: 'primary', healthy: false }, b: {}, c: {} }, leader: null, lastFailoverAgoMs: 12_000 }),
    expect: { action: 'wait', code: 'anti-flap' },
    reason: /^last failover 12 s ago; minimum interval 60 s; a's agent is alive and recovers it in place$/,
  },
  {
    name: 'inside the anti-flap window with no live primary agent: fail over (nobody else can bring the primary back)',
    scenario: cluster('b', { nodes: aDead(), leader: null, lastFailoverAgoMs: 12_000 }),
    expect: { action: 'start-failover', epoch: 8, candidate: 'b' },
    reason: /a has no live agent.*fail over at epoch 8$/,
  },
  { name: 'anti-flap window over', scenario: cluster('b', { nodes: aDead(), leader: null, lastFailoverAgoMs: 61_000 }), expect: { action: 'start-failover', epoch: 8 }, reason: /fail over at epoch 8$/ },
  {
    name: 'key lapsed but the primary is alive and healthy: give it time to reclaim',
    scenario: cluster('b', { leader: null, vacantForMs: 4_000 }),
    expect: { action: 'wait', code: 'primary-may-reclaim' },
    reason: /^the leader key is vacant but primary a is alive and healthy: giving it 6\.0 s more to reclaim it$/,
  },
  {
    name: 'reclaim grace over',
    scenario: cluster('b', { leader: null, vacantForMs: 11_000 }),
    expect: { action: 'start-failover', candidate: 'b' },
    reason: /^primary a lost the leader key \(a is alive but did not reclaim it\)/,
  },
  {
    name: 'primary alive but unhealthy: no grace',
    scenario: cluster('b', { nodes: { a: { role: 'primary', healthy: false }, b: {}, c: {} }, leader: null, vacantForMs: 1_000 }),
    expect: { action: 'start-failover', candidate: 'b' },
    reason: /^primary a lost the leader key \(a is unhealthy\)/,
  },
  {
    name: 'another replica holds the key: it is starting a failover',
    scenario: cluster('b', { nodes: aDead(), leader: 'c' }),
    expect: { action: 'wait', code: 'leader-elsewhere' },
    reason: /^c holds the leader key and is taking over from primary a$/,
  },
  {
    name: 'already holds the key (won the campaign, history not written yet)',
    scenario: cluster('b', { nodes: aDead(), leader: 'b' }),
    expect: { action: 'start-failover', candidate: 'b', epoch: 8 },
    reason: /fail over at epoch 8$/,
  },
  {
    name: 'holding the key, no reclaim grace for the old primary',
    scenario: cluster('b', { leader: 'b' }),
    expect: { action: 'start-failover', candidate: 'b' },
    reason: /a is alive but did not reclaim it/,
  },
  {
    name: 'holding the key but the cluster was paused meanwhile',
    scenario: cluster('b', { nodes: aDead(), leader: 'b', paused: true }),
    expect: { action: 'release-leader' },
    reason: /^cluster is paused: no automatic failover from a .*; release the leader key$/,
  },
  {
    name: 'holding the key but c now ranks first',
    scenario: cluster('b', { nodes: aDead({ priority: 50 }), leader: 'b' }),
    expect: { action: 'release-leader' },
    reason: /^node c is the chosen candidate \(priority 100, 0 commits behind the remote\); this node ranks 2nd; release the leader key$/,
  },
];

const oldPrimaryRows: Row[] = [
  {
    name: 'fenced primary finds the key vacant and the topology still its own',
    scenario: cluster('a', { leader: null, vacantForMs: 2_000, nodes: { a: { role: 'fenced', notOnRemote: 3 }, b: {}, c: {} } }),
    expect: { action: 'start-failover', epoch: 8, candidate: 'a', fromPrimary: 'a', steps: all },
    reason:
      /^the leader key is vacant and the topology still names this node primary at epoch 7: reclaim it; it holds 3 commits the remote lacks, which recovery keeps: recover in place at epoch 8 \(fence, .*reroute\)$/,
  },
  {
    name: 'past the reclaim grace the old primary leaves it to the chosen replica',
    scenario: cluster('a', { leader: null, vacantForMs: 11_000, nodes: { a: { role: 'fenced' }, b: {}, c: {} } }),
    expect: { action: 'wait', code: 'grace-expired' },
    reason: /^the leader key stayed vacant past the reclaim grace \(10 s\) and b is the chosen candidate: leave the failover to it$/,
  },
  {
    name: 'past the grace but paused: nobody else will fail over, so reclaim',
    scenario: cluster('a', { leader: null, paused: true, nodes: { a: { role: 'fenced' }, b: {}, c: {} } }),
    expect: { action: 'start-failover', candidate: 'a', fromPrimary: 'a' },
    reason: /reclaim it: recover in place at epoch 8/,
  },
  {
    name: 'past the grace inside the anti-flap window: reclaim',
    scenario: cluster('a', { leader: null, lastFailoverAgoMs: 20_000, nodes: { a: { role: 'fenced' }, b: {}, c: {} } }),
    expect: { action: 'start-failover', candidate: 'a', fromPrimary: 'a' },
    reason: /reclaim it: recover in place at epoch 8/,
  },
  {
    name: 'past the grace with no eligible replica: reclaim',
    scenario: cluster('a', { leader: null, nodes: { a: { role: 'fenced' }, b: { healthy: false }, c: { nofailover: true } } }),
    expect: { action: 'start-failover', candidate: 'a', fromPrimary: 'a' },
    reason: /reclaim it: recover in place at epoch 8/,
  },
  {
    name: 'unhealthy old primary does not reclaim',
    scenario: cluster('a', { leader: null, nodes: { a: { role: 'fenced', healthy: false }, b: {}, c: {} } }),
    expect: { action: 'wait', code: 'self-unhealthy' },
    reason: /not reclaiming the leader key; replicas will fail over$/,
  },
  {
    name: 'returning old primary sees a newer epoch naming b',
    scenario: cluster('a', { nodes: { a: { role: 'fenced', notOnRemote: 3 }, b: { role: 'primary', epoch: 8 }, c: {} }, topology: { epoch: 8, primary: 'b' }, leader: 'b' }),
    expect: { action: 'rejoin-as-replica', primary: 'b', epoch: 8, orphanEpoch: 7 },
    reason: /^this node was primary at epoch 7; topology epoch 8 names b: rejoin as a replica, saving 3 commits the remote lacks under doltgate\/orphaned\/7\/$/,
  },
  {
    name: 'returning old primary during the failover that replaces it',
    scenario: midFailover('a', { nodes: { a: { role: 'fenced' }, b: {}, c: {} } }),
    expect: { action: 'rejoin-as-replica', primary: null, epoch: 8 },
    reason: /names no primary yet \(failover in progress\): rejoin as a replica$/,
  },
  {
    name: 'returning old primary that is still writable fences before anything',
    scenario: cluster('a', { topology: { epoch: 8, primary: 'b' }, leader: 'b', selfView: { role: 'primary', writable: true } }),
    expect: { action: 'fence-self', releaseLeader: false },
    reason: /writable but b holds the leader key/,
  },
  {
    name: 'returning old primary believing itself primary, nothing unpushed',
    scenario: cluster('a', { topology: { epoch: 8, primary: 'b' }, leader: 'b', selfView: { role: 'primary', writable: false } }),
    expect: { action: 'rejoin-as-replica', primary: 'b' },
    reason: /topology epoch 8 names b: rejoin as a replica$/,
  },
  {
    name: 'fenced primary while a replica holds the key',
    scenario: cluster('a', { leader: 'b', nodes: { a: { role: 'fenced' }, b: {}, c: {} } }),
    expect: { action: 'wait', code: 'leader-elsewhere' },
    reason: /^b holds the leader key although the topology names this node primary at epoch 7: a failover from this node is starting$/,
  },
];

const bootstrapRows: Row[] = [
  {
    name: 'no topology: the top-ranked member bootstraps epoch 1',
    scenario: boot('a'),
    expect: { action: 'acquire-leader', mode: 'bootstrap', epoch: 1 },
    reason: /^no topology yet: this node is the chosen initial primary \(priority 100, 0 commits behind the remote\); bootstrap epoch 1$/,
  },
  { name: 'no topology: others wait for it', scenario: boot('b'), expect: { action: 'wait', code: 'awaiting-bootstrap' }, reason: /^no topology yet: a is the chosen initial primary \(priority 100/ },
  {
    name: 'configured initial primary bootstraps',
    scenario: boot('c'),
    config: { initialPrimary: 'c' },
    expect: { action: 'acquire-leader', mode: 'bootstrap', epoch: 1 },
    reason: /^no topology yet: this node is the configured initial primary; bootstrap epoch 1$/,
  },
  { name: 'configured initial primary: others wait', scenario: boot('a'), config: { initialPrimary: 'c' }, expect: { action: 'wait', code: 'awaiting-bootstrap' }, reason: /waiting for the initial primary c to bootstrap$/ },
  { name: 'another node holds the key while bootstrapping', scenario: boot('b', { leader: 'a' }), expect: { action: 'wait', code: 'awaiting-bootstrap' }, reason: /^a holds the leader key and is bootstrapping the cluster$/ },
  { name: 'holds the key but wrote no topology yet: finish', scenario: boot('a', { leader: 'a' }), expect: { action: 'acquire-leader', mode: 'bootstrap', epoch: 1 }, reason: /no topology exists yet: finish bootstrapping epoch 1$/ },
  {
    name: 'topology lost (etcd wiped) but members acted on epoch 7: epochs keep rising',
    scenario: boot('a', { nodes: { a: { epoch: 7 }, b: { epoch: 7 }, c: { epoch: 7 } }, selfView: { epoch: 7 } }),
    expect: { action: 'acquire-leader', mode: 'bootstrap', epoch: 8 },
    reason: /bootstrap epoch 8$/,
  },
  { name: 'bootstrap is allowed while paused', scenario: boot('a', { paused: true }), expect: { action: 'acquire-leader', mode: 'bootstrap' }, reason: /bootstrap epoch 1$/ },
  { name: 'chosen initial primary is unhealthy', scenario: boot('a', { selfView: { epoch: 0, healthy: false, failures: 1 } }), expect: { action: 'wait', code: 'self-unhealthy' }, reason: /its Dolt is unhealthy \(1 failed check\)$/ },
  {
    name: 'no member may bootstrap',
    scenario: boot('a', { nodes: { a: { epoch: 0, nofailover: true }, b: { epoch: 0, nofailover: true }, c: { epoch: 0, healthy: false } } }),
    expect: { action: 'wait', code: 'no-eligible-candidate' },
    reason: /^no topology yet and no member can bootstrap: a has nofailover, b has nofailover, c is unhealthy \(3 failed checks\)$/,
  },
];

const inFlightRows: Row[] = [
  {
    name: 'the candidate holding the key resumes at its next step, local steps again since its Dolt takes no writes',
    scenario: midFailover('b'),
    expect: {
      action: 'resume-failover', candidate: 'b', epoch: 8, steps: ['disable-read-only', 'recover', 'enable-push-on-write', 'reroute'],
      completedSteps: ['fence', 'disable-read-only'], takeoverFrom: null, releaseLeaderAfter: false,
    },
    reason: /^resume failover to b at epoch 8 \(done: fence, disable-read-only; next: recover\): this node is its candidate$/,
  },
  {
    name: 'a candidate whose Dolt already takes writes resumes with the remaining steps only',
    scenario: midFailover('b', { inProgress: { candidate: 'b', epoch: 8, completedSteps: ['fence', 'disable-read-only', 'recover', 'enable-push-on-write'] }, selfView: { writable: true } }),
    expect: { action: 'resume-failover', candidate: 'b', epoch: 8, steps: ['reroute'] },
    reason: /^resume failover to b at epoch 8 \(done: .*; next: reroute\): this node is its candidate$/,
  },
  {
    name: 'others wait while the executor is alive',
    scenario: midFailover('c'),
    expect: { action: 'wait', code: 'failover-in-progress' },
    reason: /^failover to b at epoch 8 \(done: fence, disable-read-only; next: recover\) is in progress, run by b$/,
  },
  { name: 'finishing is allowed while paused', scenario: midFailover('b', { paused: true }), expect: { action: 'resume-failover', candidate: 'b' }, reason: /^resume failover to b/ },
  {
    name: 'the candidate restarted (key vacant) and resumes the same epoch',
    scenario: midFailover('b', { leader: null }),
    expect: { action: 'resume-failover', candidate: 'b', epoch: 8, steps: ['disable-read-only', 'recover', 'enable-push-on-write', 'reroute'] },
    reason: /: this node is its candidate and the leader key is vacant$/,
  },
  {
    name: 'others give the restarted candidate the chance to resume',
    scenario: midFailover('c', { leader: null }),
    expect: { action: 'wait', code: 'candidate-resuming' },
    reason: /stalled with the leader key vacant; waiting for its candidate b to resume it$/,
  },
  {
    name: 'the executor died: the chosen node takes over at a new epoch',
    scenario: midFailover('c', { leader: null, nodes: aDead({ live: false }) }),
    expect: { action: 'resume-failover', candidate: 'c', epoch: 9, steps: all, completedSteps: [], takeoverFrom: { candidate: 'b', epoch: 8 }, fromPrimary: 'a' },
    reason: /^failover to b at epoch 8 \(done: fence, disable-read-only; next: recover\) stalled \(b has no live agent\): this node, the chosen candidate \(priority 100, 0 commits behind the remote\), takes it over at epoch 9$/,
  },
  {
    name: 'a takeover ignores the anti-flap window (the cluster has no primary)',
    scenario: midFailover('c', { leader: null, nodes: aDead({ live: false }), lastFailoverAgoMs: 5_000 }),
    expect: { action: 'resume-failover', candidate: 'c', epoch: 9 },
    reason: /takes it over at epoch 9$/,
  },
  {
    name: 'the candidate is alive but unhealthy: take over',
    scenario: midFailover('c', { leader: null, nodes: aDead({ healthy: false }) }),
    expect: { action: 'resume-failover', candidate: 'c', epoch: 9 },
    reason: /stalled \(b is unhealthy\)/,
  },
  {
    name: 'paused: a stalled failover is not taken over automatically',
    scenario: midFailover('c', { leader: null, nodes: aDead({ live: false }), paused: true }),
    expect: { action: 'wait', code: 'paused' },
    reason: /^cluster is paused: failover to b at epoch 8 .* stalled and is not taken over automatically \(run doltgate failover --to <node>\)$/,
  },
  {
    name: 'nobody can take over',
    scenario: midFailover('c', { leader: null, nodes: aDead({ live: false }, { nofailover: true }) }),
    expect: { action: 'wait', code: 'no-eligible-candidate' },
    reason: /stalled \(b has no live agent\) and no node can take it over: c has nofailover$/,
  },
  {
    name: 'holding the key to take over',
    scenario: midFailover('c', { leader: 'c', nodes: aDead({ live: false }) }),
    expect: { action: 'resume-failover', candidate: 'c', epoch: 9, takeoverFrom: { candidate: 'b', epoch: 8 } },
    reason: /takes it over at epoch 9$/,
  },
  {
    name: 'etcd unreachable mid-failover: the executor changes nothing',
    scenario: midFailover('b', { etcd: { reachable: false, hasQuorum: false } }),
    expect: { action: 'wait', code: 'etcd-unreachable' },
    reason: /^etcd is unreachable: this node holds the leader key but changes nothing until etcd answers \(7\.0 s before fencing\)$/,
  },
  {
    name: 'candidate died after taking the key, before publishing the fence',
    scenario: cluster('c', { nodes: aDead({ live: false }), leader: null, inProgress: { candidate: 'b', epoch: 8, completedSteps: [] } }),
    expect: { action: 'resume-failover', candidate: 'c', epoch: 9, takeoverFrom: { candidate: 'b', epoch: 8 } },
    reason: /^failover to b at epoch 8 \(done: none; next: fence\) stalled \(b has no live agent\)/,
  },
  {
    name: 'a record abandoned before its fence is ignored once the old primary reclaimed',
    scenario: cluster('c', { nodes: { a: { role: 'primary' }, b: { live: false }, c: {} }, inProgress: { candidate: 'b', epoch: 8, completedSteps: [] } }),
    expect: { action: 'follow', primary: 'a', epoch: 7 },
    reason: /^following primary a at epoch 7$/,
  },
  {
    name: 'a record whose reroute is published counts as done',
    scenario: cluster('c', {
      nodes: { a: { live: false }, b: { role: 'primary', epoch: 8 }, c: {} },
      topology: { epoch: 8, primary: 'b' },
      leader: 'b',
      inProgress: { candidate: 'b', epoch: 8, completedSteps: ['fence', 'disable-read-only', 'recover', 'enable-push-on-write'] },
    }),
    expect: { action: 'follow', primary: 'b', epoch: 8 },
    reason: /^following primary b at epoch 8/,
  },
  {
    name: 'topology mid-failover with no history record: take over',
    scenario: cluster('b', { nodes: aDead(), topology: { epoch: 8, primary: null, state: 'failover' }, leader: null }),
    expect: { action: 'resume-failover', candidate: 'b', epoch: 9, takeoverFrom: null },
    reason: /^failover at epoch 8 \(no history record\) stalled \(no executor holds the leader key\): this node, the chosen candidate .*takes it over at epoch 9$/,
  },
];

const handOverRows: Row[] = [
  {
    name: 'outgoing primary runs the fence of its hand-over',
    scenario: handOver('a', false),
    expect: { action: 'resume-failover', kind: 'switchover', candidate: 'c', fromPrimary: 'a', epoch: 8, steps: ['fence'], releaseLeaderAfter: true, opId: 'op-1' },
    reason: /^hand-over to c at epoch 8: run fence \(drain, push heads, restart read-only\), then release the leader key$/,
  },
  {
    name: 'outgoing primary with the fence done only releases the key',
    scenario: handOver('a', true, { selfView: { role: 'fenced', writable: false } }),
    expect: { action: 'resume-failover', steps: [], releaseLeaderAfter: true },
    reason: /^hand-over to c at epoch 8: fence is done; release the leader key so c can take over$/,
  },
  {
    name: 'bystanders wait during the hand-over',
    scenario: handOver('b', false),
    expect: { action: 'wait', code: 'failover-in-progress' },
    reason: /^switchover to c at epoch 8 \(done: none; next: fence\) is in progress, run by a$/,
  },
  {
    name: 'the target takes the released key and runs the rest',
    scenario: handOver('c', true, { leader: null }),
    expect: { action: 'resume-failover', candidate: 'c', epoch: 8, steps: ['disable-read-only', 'recover', 'enable-push-on-write', 'reroute'], releaseLeaderAfter: false },
    reason: /^resume switchover to c at epoch 8 \(done: fence; next: disable-read-only\): this node is its candidate and the leader key is vacant$/,
  },
  {
    name: 'the old primary rejoins once it has handed over',
    scenario: handOver('a', true, { leader: null, nodes: { a: { role: 'fenced' }, b: {}, c: {} } }),
    expect: { action: 'rejoin-as-replica', primary: null, epoch: 8 },
    reason: /names no primary yet \(switchover in progress\)/,
  },
  {
    name: 'the outgoing primary lost its lease mid-fence: the target runs the whole procedure',
    scenario: handOver('c', false, { leader: null }),
    expect: { action: 'resume-failover', candidate: 'c', epoch: 8, steps: all },
    reason: /^resume switchover to c at epoch 8 \(done: none; next: fence\)/,
  },
];

const switchoverToC = { kind: 'switchover' as const, target: 'c' };
const opRows: Row[] = [
  {
    name: 'switchover to a healthy target: the primary claims it and hands over',
    scenario: cluster('a', { op: switchoverToC }),
    expect: { action: 'execute-op', kind: 'switchover', candidate: 'c', fromPrimary: 'a', epoch: 8, steps: ['fence'], handOver: true, releaseLeaderAfter: true, opId: 'op-1' },
    reason: /^switchover op-1 from a to c at epoch 8: a fences \(drains, pushes its heads, restarts read-only\) and hands over the leader key; c runs disable-read-only, recover, enable-push-on-write, reroute$/,
  },
  { name: 'the switchover target keeps following until the key is handed over', scenario: cluster('c', { op: switchoverToC }), expect: { action: 'follow', primary: 'a' }, reason: /^following primary a/ },
  {
    name: 'switchover without a target promotes the top-ranked replica',
    scenario: cluster('a', { nodes: { a: { role: 'primary' }, b: {}, c: { priority: 200 } }, op: { kind: 'switchover' } }),
    expect: { action: 'execute-op', candidate: 'c' },
    reason: /from a to c at epoch 8/,
  },
  {
    name: 'switchover to an unhealthy target: the target refuses',
    scenario: cluster('c', { nodes: { a: { role: 'primary' }, b: {}, c: { healthy: false } }, op: switchoverToC }),
    expect: { action: 'refuse-op' },
    reason: /^switchover op-1 refused: target c is unhealthy \(3 failed checks\); use --force to promote it anyway$/,
  },
  { name: 'a refused op is not the business of a non-arbiter', scenario: cluster('b', { nodes: { a: { role: 'primary' }, b: {}, c: { healthy: false } }, op: switchoverToC }), expect: { action: 'follow' }, reason: /^following primary a/ },
  { name: 'nor of the primary when the target can refuse', scenario: cluster('a', { nodes: { a: { role: 'primary' }, b: {}, c: { healthy: false } }, op: switchoverToC }), expect: { action: 'renew-lease' }, reason: /^primary at epoch 7/ },
  {
    name: 'switchover to a nofailover target, even forced',
    scenario: cluster('c', { nodes: { a: { role: 'primary' }, b: {}, c: { nofailover: true } }, op: { ...switchoverToC, force: true } }),
    expect: { action: 'refuse-op' },
    reason: /^switchover op-1 refused: target c has nofailover \(--force does not override it; clear it in that node's agent config\)$/,
  },
  {
    name: 'target without a live agent: the leader refuses',
    scenario: cluster('a', { op: { kind: 'switchover', target: 'd' } }),
    expect: { action: 'refuse-op' },
    reason: /refused: target d has no live agent \(no member record\)$/,
  },
  { name: 'target is already the primary', scenario: cluster('a', { op: { kind: 'switchover', target: 'a' } }), expect: { action: 'refuse-op' }, reason: /refused: target a is the current primary$/ },
  {
    name: 'switchover while the primary is unhealthy',
    scenario: cluster('c', { nodes: { a: { role: 'primary', healthy: false, failures: 1 }, b: {}, c: {} }, op: switchoverToC }),
    expect: { action: 'refuse-op' },
    reason: /refused: a switchover needs a healthy primary and a is unhealthy \(1 failed check\): use failover$/,
  },
  {
    name: 'switchover with the primary gone',
    scenario: cluster('c', { nodes: aDead(), leader: null, op: switchoverToC }),
    expect: { action: 'refuse-op' },
    reason: /refused: primary a does not hold the leader key \(it failed, or is reclaiming it\): use failover$/,
  },
  {
    name: 'forced failover to a named node with the primary gone',
    scenario: cluster('c', { nodes: aDead(), leader: null, op: { kind: 'failover', target: 'c', force: true } }),
    expect: { action: 'execute-op', kind: 'failover', candidate: 'c', fromPrimary: 'a', epoch: 8, steps: all, handOver: false, releaseLeaderAfter: false },
    reason: /^failover op-1 from a to c at epoch 8: c runs fence, disable-read-only, recover, enable-push-on-write, reroute \(forced: health, role and lag checks skipped\)$/,
  },
  {
    name: 'the automatic candidate defers to the operator op',
    scenario: cluster('b', { nodes: aDead(), leader: null, op: { kind: 'failover', target: 'c', force: true } }),
    expect: { action: 'wait', code: 'op-pending' },
    reason: /^operator failover op-1 is pending and c executes it: no automatic failover meanwhile$/,
  },
  {
    name: 'the reclaimable old primary defers to the operator op',
    scenario: cluster('a', { nodes: { a: { role: 'fenced' }, b: {}, c: {} }, leader: null, op: { kind: 'failover', target: 'c' } }),
    expect: { action: 'wait', code: 'op-pending' },
    reason: /c executes it/,
  },
  {
    name: 'forced failover to a lagging target',
    scenario: cluster('c', { nodes: aDead({}, { behind: 500 }), leader: null, op: { kind: 'failover', target: 'c', force: true } }),
    expect: { action: 'execute-op', candidate: 'c' },
    reason: /\(forced: health, role and lag checks skipped\)$/,
  },
  {
    name: 'unforced failover to a lagging target',
    scenario: cluster('c', { nodes: aDead({}, { behind: 500 }), leader: null, op: { kind: 'failover', target: 'c' } }),
    expect: { action: 'refuse-op' },
    reason: /refused: target c is 500 commits behind the remote \(limit 100\); use --force to promote it anyway$/,
  },
  {
    name: 'failover while a healthy primary holds the key needs --force',
    scenario: cluster('c', { op: { kind: 'failover', target: 'c' } }),
    expect: { action: 'refuse-op' },
    reason: /refused: primary a is healthy and holds the leader key: use switchover, or --force to fail over anyway$/,
  },
  {
    name: 'forced failover from a healthy primary: it fences and hands over',
    scenario: cluster('a', { op: { kind: 'failover', target: 'c', force: true } }),
    expect: { action: 'execute-op', kind: 'failover', candidate: 'c', handOver: true, steps: ['fence'], releaseLeaderAfter: true },
    reason: /^failover op-1 from a to c at epoch 8: a fences and hands over the leader key/,
  },
  {
    name: 'op while another failover is in progress',
    scenario: midFailover('c', { op: { kind: 'failover', target: 'c' } }),
    expect: { action: 'refuse-op' },
    reason: /^failover op-1 refused: failover to b at epoch 8 \(done: fence, disable-read-only; next: recover\) is in progress, run by b$/,
  },
  {
    name: 'switchover while a failover is in flight',
    scenario: midFailover('c', { op: switchoverToC }),
    expect: { action: 'refuse-op' },
    reason: /is in progress: a switchover needs a stable cluster$/,
  },
  {
    name: 'failover op takes over a stalled failover',
    scenario: midFailover('c', { leader: null, nodes: aDead({ live: false }), op: { kind: 'failover', target: 'c' } }),
    expect: { action: 'execute-op', candidate: 'c', epoch: 9, takeoverFrom: { candidate: 'b', epoch: 8 }, steps: all },
    reason: /^failover op-1: c takes over the stalled failover to b at epoch 8 .* at epoch 9$/,
  },
  {
    name: 'failover op naming the stalled candidate resumes it',
    scenario: midFailover('b', { leader: null, op: { kind: 'failover', target: 'b' } }),
    expect: { action: 'execute-op', candidate: 'b', epoch: 8, steps: ['disable-read-only', 'recover', 'enable-push-on-write', 'reroute'], opId: 'op-1' },
    reason: /^failover op-1: b resumes the stalled failover to b at epoch 8/,
  },
  {
    name: 'paused and no target: refused',
    scenario: cluster('a', { paused: true, op: { kind: 'switchover' } }),
    expect: { action: 'refuse-op' },
    reason: /refused: the cluster is paused: name a target \(--to <node>\) for an operator switchover$/,
  },
  { name: 'paused with a target: runs', scenario: cluster('a', { paused: true, op: switchoverToC }), expect: { action: 'execute-op', candidate: 'c' }, reason: /from a to c/ },
  {
    name: 'expired op',
    scenario: cluster('c', { op: { ...switchoverToC, requestedAt: T0 - 130_000 } }),
    expect: { action: 'refuse-op' },
    reason: /^switchover op-1 refused: requested 130 s ago; ops expire after 120 s$/,
  },
  {
    name: 'no quorum: a forced op does not run',
    scenario: cluster('c', { nodes: aDead(), leader: null, etcd: { reachable: true, hasQuorum: false }, op: { kind: 'failover', target: 'c', force: true } }),
    expect: { action: 'wait', code: 'no-quorum' },
    reason: /^etcd has no quorum: no promotion$/,
  },
  {
    name: 'target whose own fresher check fails refuses',
    scenario: cluster('c', { nodes: aDead(), leader: null, op: { kind: 'failover', target: 'c' }, selfView: { healthy: false, failures: 1 } }),
    expect: { action: 'refuse-op' },
    reason: /refused: target c fails its own health check \(1 failed check\); use --force to promote it anyway$/,
  },
];

const tables: Array<[string, Row[]]> = [
  ['primary', primaryRows],
  ['replica', replicaRows],
  ['automatic failover', failoverRows],
  ['old primary', oldPrimaryRows],
  ['bootstrap', bootstrapRows],
  ['failover in flight', inFlightRows],
  ['hand-over', handOverRows],
  ['operator ops', opRows],
];

function label(row: Row): string {
  return `${row.expect.action}${row.expect.code ? ` (${row.expect.code})` : ''}: ${row.name}`;
}

describe('ha decide', () => {
  for (const [title, rows] of tables) {
    describe(title, () => {
      for (const row of rows) {
        it(label(row), () => {
          const rowConfig = row.config ? haConfig({ ...config, ...row.config }) : config;
          const decision: Decision = decide(observe(row.scenario), rowConfig, row.scenario.now ?? T0);
          const { action, ...fields } = row.expect;
          expect(decision.action, decision.reason).to.equal(action);
          expect(decision).to.deep.include(fields);
          expect(decision.reason).to.match(row.reason);
        });
      }
    });
  }

  it('is pure: the same snapshot gives the same decision and is not modified', () => {
    for (const [, rows] of tables) {
      for (const row of rows) {
        const obs = observe(row.scenario);
        const before = JSON.stringify(obs);
        const first = decide(obs, config, T0);
        expect(decide(obs, config, T0)).to.deep.equal(first);
        expect(JSON.stringify(obs)).to.equal(before);
      }
    }
  });

  it('on one snapshot, at most one agent campaigns and every waiting agent names the same candidate', () => {
    const campaigning = new Set(['start-failover', 'resume-failover', 'execute-op', 'acquire-leader']);
    for (const [, rows] of tables) {
      for (const row of rows) {
        const rowConfig = row.config ? haConfig({ ...config, ...row.config }) : config;
        const actors: string[] = [];
        const named = new Set<string>();
        for (const self of Object.keys(row.scenario.nodes)) {
          if (row.scenario.nodes[self]!.live === false) continue;
          const decision = decide(observe({ ...row.scenario, self, selfView: undefined }), rowConfig, T0);
          if (campaigning.has(decision.action) && !('releaseLeaderAfter' in decision && decision.releaseLeaderAfter)) actors.push(self);
          if (decision.action === 'wait' && decision.code === 'not-candidate') named.add(/node (\S+) is the chosen candidate/.exec(decision.reason)?.[1] ?? '?');
        }
        expect(actors.length, `${row.name}: ${actors.join(', ')}`).to.be.at.most(1);
        expect(named.size, `${row.name}: ${[...named].join(', ')}`).to.be.at.most(1);
        if (actors.length === 1 && named.size === 1) expect([...named][0], row.name).to.equal(actors[0]);
      }
    }
  });
});
