/**
 * What `doltgate switchover` and `doltgate failover` share once their arguments are parsed:
 * send the request (dry run or real), print the judgement, and — unless --no-wait — follow the
 * op's WatchOperation stream, printing one line per change until the op succeeds, fails or is
 * refused. The exit code is the op's outcome: succeeded 0, failed 1, refused 3.
 *
 * Live lines go to stdout in human mode and to stderr with --json, so stdout holds exactly one
 * JSON object. The --json shapes (every key always present, absent values null):
 *   dry run, or --no-wait:   RequestJson   { dryRun, opId, kind, target, executor, candidate,
 *                                            epoch, outline: [{node, step}], reason, answeredBy }
 *   after following the op:  OperationJson { id, kind, target, force, state, executor, epoch,
 *                                            requestedAt, requestedBy, reason, steps: [StepJson] }
 *   StepJson: { name, state, startedAt, endedAt, durationMs, executor, detail }
 *
 * Events can repeat when the stream moves to another agent (each agent's first event reports the
 * op as it is); the printer drops an event it has already printed.
 */

import { makeOpId, type FailoverRequest, type Operation, type OperationEvent, type OperationReply, type Step, type SwitchoverRequest } from '../proto/control-types';
import type { ConnectionArgs } from './cli-args';
import { ExitCode, type CliIo, type ExitCodeValue } from './cli-io';
import { requesterName, withConnection } from './control-client';
import { formatClock, formatOptionalDuration, nullable } from './format-table';

export interface StepJson {
  name: string;
  state: string;
  startedAt: string;
  endedAt: string | null;
  durationMs: number | null;
  executor: string | null;
  detail: string;
}

export interface OperationJson {
  id: string;
  kind: string;
  target: string | null;
  force: boolean;
  state: string;
  executor: string | null;
  epoch: number | null;
  requestedAt: string;
  requestedBy: string;
  reason: string;
  steps: StepJson[];
}

export interface RequestJson {
  dryRun: boolean;
  opId: string | null;
  kind: string;
  target: string | null;
  executor: string;
  candidate: string;
  epoch: number;
  outline: Array<{ node: string; step: string }>;
  reason: string;
  answeredBy: string;
}

export function stepJson(step: Step): StepJson {
  return {
    name: step.name,
    state: step.state,
    startedAt: step.startedAt,
    endedAt: nullable(step.endedAt),
    durationMs: nullable(step.durationMs),
    executor: nullable(step.executor),
    detail: step.detail,
  };
}

export function operationJson(op: Operation): OperationJson {
  return {
    id: op.id,
    kind: op.kind,
    target: nullable(op.target),
    force: op.force,
    state: op.state,
    executor: nullable(op.executor),
    epoch: nullable(op.epoch),
    requestedAt: op.requestedAt,
    requestedBy: op.requestedBy,
    reason: op.reason,
    steps: op.steps.map(stepJson),
  };
}

export function requestJson(kind: string, target: string | null, reply: OperationReply): RequestJson {
  return {
    dryRun: reply.dryRun,
    opId: reply.opId === '' ? null : reply.opId,
    kind,
    target,
    executor: reply.executor,
    candidate: reply.candidate,
    epoch: reply.epoch,
    outline: reply.outline.map(({ node, step }) => ({ node, step })),
    reason: reply.reason,
    answeredBy: reply.answeredBy,
  };
}

/** The dry run's answer: the judgement sentence, then the numbered plan. */
export function formatDryRun(reply: OperationReply): string {
  const lines = [`dry run (answered by ${reply.answeredBy}): ${reply.reason}`, `would publish epoch ${reply.epoch} with ${reply.candidate} as primary; plan:`];
  reply.outline.forEach(({ node, step }, i) => lines.push(`  ${i + 1}. ${node.padEnd(12)}  ${step}`));
  return lines.join('\n');
}

const stepNameWidth = 20;

/** One line for one event, without the clock. */
export function formatEvent(event: OperationEvent): string {
  const op = event.operation;
  if (op === null) return 'event without an operation';
  const step = event.step;
  if (step !== null) {
    const parts = [step.name.padEnd(stepNameWidth), step.state.padEnd(7)];
    if (step.durationMs !== undefined) parts.push(formatOptionalDuration(step.durationMs));
    if (step.executor !== undefined) parts.push(`on ${step.executor}`);
    const head = parts.join('  ').trimEnd();
    return step.detail === '' ? head : `${head}: ${step.detail}`;
  }
  switch (op.state) {
    case 'pending':
      return `op ${op.id} pending: waiting for an agent to claim it`;
    case 'running':
      return `op ${op.id} running${op.executor === undefined ? '' : ` on ${op.executor}`}`;
    case 'succeeded':
      return `op ${op.id} succeeded${op.epoch === undefined ? '' : ` at epoch ${op.epoch}`}${op.reason === '' ? '' : `: ${op.reason}`}`;
    default:
      return `op ${op.id} ${op.state}${op.reason === '' ? '' : `: ${op.reason}`}`;
  }
}

/** The identity of an event for dropping repeats. */
function eventKey(event: OperationEvent): string {
  const step = event.step;
  if (step !== null) return JSON.stringify(['step', step.name, step.state, step.detail, step.endedAt ?? null]);
  const op = event.operation;
  return JSON.stringify(['op', op?.state, op?.executor ?? null, op?.epoch ?? null]);
}

/** Prints each event once, with the local receive time in UTC. */
export class ProgressPrinter {
  private readonly seen = new Set<string>();
  constructor(private readonly write: (line: string) => void, private readonly now: () => number = Date.now) {}

  print(event: OperationEvent): void {
    const key = eventKey(event);
    if (this.seen.has(key)) return;
    this.seen.add(key);
    this.write(`${formatClock(this.now())}  ${formatEvent(event)}`);
  }
}

export function exitCodeOfOutcome(state: string): ExitCodeValue {
  if (state === 'succeeded') return ExitCode.ok;
  if (state === 'refused') return ExitCode.refused;
  return ExitCode.failed;
}

export type OpCall =
  | { method: 'switchover'; request: SwitchoverRequest }
  | { method: 'failover'; request: FailoverRequest };

export interface FollowOptions {
  connection: ConnectionArgs;
  call: OpCall;
  /** Return once the op is written instead of following it. */
  noWait: boolean;
  io: CliIo;
  now?: () => number;
}

/** Sends the request and, for a real one, follows the op to its end. Returns the exit code. */
export async function requestAndFollow(options: FollowOptions): Promise<number> {
  const { io, call } = options;
  const json = options.connection.json;
  const kind = call.method;
  const target = call.request.target === undefined || call.request.target === '' ? null : call.request.target;
  // The id is chosen here, not by the agent, so a retry through another agent after a lost
  // answer returns the op already written instead of writing a second one.
  const opId = call.request.dryRun ? undefined : (call.request.opId ?? makeOpId(kind, Date.now()));
  const request = { ...call.request, requestedBy: requesterName(), opId };
  return withConnection(options.connection, async (connection) => {
    const reply = await connection.call<typeof request, OperationReply>(call.method, request);
    if (reply.dryRun) {
      io.out(json ? JSON.stringify(requestJson(kind, target, reply), null, 2) : formatDryRun(reply));
      return ExitCode.ok;
    }
    const live = json ? io.err : io.out;
    live(`${kind} op ${reply.opId} requested through agent ${reply.answeredBy}: ${reply.reason}`);
    if (options.noWait) {
      if (json) io.out(JSON.stringify(requestJson(kind, target, reply), null, 2));
      else io.out(`not following it (--no-wait): 'doltgate status' shows its state`);
      return ExitCode.ok;
    }
    const printer = new ProgressPrinter(live, options.now);
    const final = await connection.watch(reply.opId, (event) => printer.print(event));
    const op = final.operation;
    if (op === null) return ExitCode.failed;
    if (json) io.out(JSON.stringify(operationJson(op), null, 2));
    if (op.state !== 'succeeded') io.err(`doltgate ${kind}: op ${op.id} ${op.state}: ${op.reason}`);
    return exitCodeOfOutcome(op.state);
  });
}
