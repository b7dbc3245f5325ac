/**
 * The faults the suite injects, each a named verb that injects, lets the fault last, and heals
 * it (resolving once healed; convergence is the campaign's to wait for). They act by PID on the
 * processes the sandbox started, by signals and kill -9, and by a loopback partition
 * (loopback-partition.ts) that is always undone.
 *
 * Process kinds covered: the primary's Dolt and agent, a replica, the proxy, an etcd member; plus
 * an etcd stall, the primary's agent cut off from etcd, two faults back to back, and the two
 * sequences the issue saw lose writes: a primary Dolt crash followed by the new primary's, and a
 * frozen primary agent followed by the new primary's death.
 */

import type { LocalCluster, LocalProxy } from '../../sandbox/local-cluster';
import { waitForPort } from '../../sandbox/local-cluster';
import { isProcessAlive } from '../../common/child-process';
import { partition } from './loopback-partition';
import { sleep } from './write-load';

export interface FaultContext {
  cluster: LocalCluster;
  proxy: LocalProxy;
  rng: () => number;
  say(line: string): void;
}

export interface FaultKind {
  name: string;
  what: string;
  run(ctx: FaultContext): Promise<void>;
}

/** A whole number of milliseconds in [min, max]. */
function between(ctx: FaultContext, min: number, max: number): number {
  return Math.round(min + ctx.rng() * (max - min));
}

async function stablePrimary(ctx: FaultContext, notPrimary?: string, withinMs = 60_000): Promise<string> {
  return ctx.cluster.waitForStablePrimary(withinMs, notPrimary);
}

function replicaOf(ctx: FaultContext, primary: string): string {
  const others = ctx.cluster.agents.map((agent) => agent.name).filter((name) => name !== primary);
  return others[Math.floor(ctx.rng() * others.length)] as string;
}

async function doltPid(ctx: FaultContext, node: string): Promise<number> {
  const pid = await ctx.cluster.doltPid(node);
  if (pid === undefined) throw new Error(`${node} runs no dolt sql-server to fault`);
  return pid;
}

function signal(pid: number, name: NodeJS.Signals): void {
  if (isProcessAlive(pid)) process.kill(pid, name);
}

async function killDolt(ctx: FaultContext, node: string): Promise<void> {
  const pid = await doltPid(ctx, node);
  ctx.say(`kill -9 ${node}'s dolt sql-server (pid ${pid})`);
  signal(pid, 'SIGKILL');
}

async function restartAgent(ctx: FaultContext, node: string): Promise<void> {
  const agent = ctx.cluster.agent(node);
  if (!agent.process.running) {
    ctx.say(`restart ${node}'s agent`);
    await agent.process.start();
  }
}

async function restartProxy(ctx: FaultContext): Promise<void> {
  const proxy = ctx.proxy;
  if (!proxy.process.running) {
    ctx.say('restart the proxy');
    await proxy.process.start();
    await waitForPort(proxy.port, 20_000, proxy.process, proxy.process.spec.logFile);
  }
}

/** SIGSTOP `pids` for `ms`, then SIGCONT whichever still live. */
async function freeze(ctx: FaultContext, what: string, pids: number[], ms: number): Promise<void> {
  ctx.say(`SIGSTOP ${what} (pids ${pids.join(', ')}) for ${ms} ms`);
  for (const pid of pids) signal(pid, 'SIGSTOP');
  try {
    await sleep(ms);
  } finally {
    for (const pid of pids) signal(pid, 'SIGCONT');
  }
}

const primaryDoltKill: FaultKind = {
  name: 'primary-dolt-kill',
  what: "kill -9 of the primary's dolt sql-server",
  async run(ctx) {
    await killDolt(ctx, await stablePrimary(ctx));
  },
};

const primaryDoltStop: FaultKind = {
  name: 'primary-dolt-stop',
  what: "SIGSTOP of the primary's dolt sql-server for 3-8 s",
  async run(ctx) {
    const primary = await stablePrimary(ctx);
    await freeze(ctx, `${primary}'s dolt sql-server`, [await doltPid(ctx, primary)], between(ctx, 3_000, 8_000));
  },
};

/** kill -9 of a node's agent (its Dolt dies with it), restarted 2-5 s later. */
async function killAgentForAWhile(ctx: FaultContext, name: string): Promise<void> {
  ctx.say(`kill -9 ${name}'s agent`);
  await ctx.cluster.agent(name).process.kill9();
  await sleep(between(ctx, 2_000, 5_000));
  await restartAgent(ctx, name);
}

const primaryAgentKill: FaultKind = {
  name: 'primary-agent-kill',
  what: "kill -9 of the primary's agent (its Dolt dies with it: a lost host), restarted after 2-5 s",
  async run(ctx) {
    await killAgentForAWhile(ctx, await stablePrimary(ctx));
  },
};

const primaryAgentStop: FaultKind = {
  name: 'primary-agent-stop',
  what: "SIGSTOP of the primary's agent for 8-15 s (a frozen agent; its Dolt runs on)",
  async run(ctx) {
    const primary = await stablePrimary(ctx);
    await freeze(ctx, `${primary}'s agent`, [ctx.cluster.agent(primary).process.pid as number], between(ctx, 8_000, 15_000));
  },
};

const replicaKill: FaultKind = {
  name: 'replica-kill',
  what: "kill -9 of a replica's agent and Dolt, restarted after 2-5 s",
  async run(ctx) {
    await killAgentForAWhile(ctx, replicaOf(ctx, await stablePrimary(ctx)));
  },
};

const replicaDoltStop: FaultKind = {
  name: 'replica-dolt-stop',
  what: "SIGSTOP of a replica's dolt sql-server for 3-8 s",
  async run(ctx) {
    const replica = replicaOf(ctx, await stablePrimary(ctx));
    await freeze(ctx, `${replica}'s dolt sql-server`, [await doltPid(ctx, replica)], between(ctx, 3_000, 8_000));
  },
};

const proxyKill: FaultKind = {
  name: 'proxy-kill',
  what: 'kill -9 of the proxy, restarted after 1-3 s',
  async run(ctx) {
    ctx.say('kill -9 the proxy');
    await ctx.proxy.process.kill9();
    await sleep(between(ctx, 1_000, 3_000));
    await restartProxy(ctx);
  },
};

const proxyStop: FaultKind = {
  name: 'proxy-stop',
  what: 'SIGSTOP of the proxy for 2-5 s',
  async run(ctx) {
    await freeze(ctx, 'the proxy', [ctx.proxy.process.pid as number], between(ctx, 2_000, 5_000));
  },
};

const etcdMemberKill: FaultKind = {
  name: 'etcd-member-kill',
  what: 'kill -9 of one etcd member (with one member: all of etcd), restarted after 2-6 s',
  async run(ctx) {
    const members = ctx.cluster.etcd.members;
    const member = members[Math.floor(ctx.rng() * members.length)];
    ctx.say(`kill -9 etcd member ${member.name}`);
    await member.process.kill9();
    await sleep(between(ctx, 2_000, 6_000));
    ctx.say(`restart etcd member ${member.name}`);
    await member.process.start();
    await ctx.cluster.etcd.waitHealthy(member, 30_000);
  },
};

const etcdMemberStop: FaultKind = {
  name: 'etcd-member-stop',
  what: 'SIGSTOP of one etcd member for 3-8 s (with one member: an etcd stall)',
  async run(ctx) {
    const members = ctx.cluster.etcd.members;
    const member = members[Math.floor(ctx.rng() * members.length)];
    await freeze(ctx, `etcd member ${member.name}`, [member.process.pid as number], between(ctx, 3_000, 8_000));
  },
};

const etcdStall: FaultKind = {
  name: 'etcd-stall',
  what: 'SIGSTOP of every etcd member for 5-10 s',
  async run(ctx) {
    await freeze(ctx, 'etcd', ctx.cluster.etcd.members.map((member) => member.process.pid as number), between(ctx, 5_000, 10_000));
  },
};

const primaryAgentPartition: FaultKind = {
  name: 'primary-agent-partition',
  what: "the primary's agent cut off from etcd (iptables on loopback) for 5-12 s",
  async run(ctx) {
    const primary = await stablePrimary(ctx);
    const ports = ctx.cluster.etcd.members.map((member) => Number(new URL(member.clientUrl).port));
    const ms = between(ctx, 5_000, 12_000);
    ctx.say(`partition ${primary}'s agent from etcd (ports ${ports.join(', ')}) for ${ms} ms`);
    const cut = await partition(ctx.cluster.agent(primary).process.pid as number, ports);
    try {
      await sleep(ms);
    } finally {
      await cut.heal();
    }
  },
};

const primaryDoltKillTwice: FaultKind = {
  name: 'primary-dolt-kill-twice',
  what: "kill -9 of the primary's Dolt, then the next primary's Dolt 2 s later",
  async run(ctx) {
    const first = await stablePrimary(ctx);
    await killDolt(ctx, first);
    await sleep(2_000);
    const topology = (await ctx.cluster.snapshot()).topology?.value;
    const next = topology?.state === 'stable' && topology.primary ? topology.primary : await stablePrimary(ctx, undefined, 15_000).catch(() => first);
    await killDolt(ctx, next).catch((error: Error) => ctx.say(`second kill skipped: ${error.message}`));
  },
};

const stoppedAgentThenNewPrimaryDies: FaultKind = {
  name: 'stopped-agent-then-new-primary-dies',
  what: "SIGSTOP of the primary's agent; once another node is primary, kill -9 of its Dolt; SIGCONT after 8-15 s",
  async run(ctx) {
    const primary = await stablePrimary(ctx);
    const agentPid = ctx.cluster.agent(primary).process.pid as number;
    const ms = between(ctx, 8_000, 15_000);
    ctx.say(`SIGSTOP ${primary}'s agent (pid ${agentPid}) for ${ms} ms`);
    const started = Date.now();
    signal(agentPid, 'SIGSTOP');
    try {
      const next = await stablePrimary(ctx, primary, Math.max(1_000, ms - 500)).catch(() => null);
      if (next !== null) await killDolt(ctx, next);
      else ctx.say('no new primary while the agent was stopped; nothing more to kill');
      await sleep(Math.max(0, ms - (Date.now() - started)));
    } finally {
      signal(agentPid, 'SIGCONT');
    }
  },
};

/** The faults a back-to-back pair is drawn from: each stands alone. */
const singles: FaultKind[] = [
  primaryDoltKill, primaryDoltStop, primaryAgentKill, primaryAgentStop, replicaKill, replicaDoltStop,
  proxyKill, proxyStop, etcdMemberKill, etcdMemberStop, etcdStall, primaryAgentPartition,
];

const backToBack: FaultKind = {
  name: 'back-to-back',
  what: 'two faults drawn from the others, the second injected as soon as the first is healed',
  async run(ctx) {
    const a = singles[Math.floor(ctx.rng() * singles.length)];
    const b = singles[Math.floor(ctx.rng() * singles.length)];
    ctx.say(`back to back: ${a.name}, then ${b.name}`);
    await a.run(ctx);
    await b.run(ctx);
  },
};

export const faultKinds: readonly FaultKind[] = [...singles, primaryDoltKillTwice, stoppedAgentThenNewPrimaryDies, backToBack];

export function faultKind(name: string): FaultKind {
  const kind = faultKinds.find((k) => k.name === name);
  if (kind === undefined) throw new Error(`no fault named ${name}; known: ${faultKinds.map((k) => k.name).join(', ')}`);
  return kind;
}
