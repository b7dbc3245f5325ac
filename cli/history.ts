/**
 * `doltgate history [--limit N]`: past failovers, switchovers and bootstraps, newest epoch first,
 * each with its steps (state, duration, the node that ran it, detail) and any branches saved as
 * `doltgate/orphaned/<epoch>/<branch>` when an old primary rejoined. Read-only.
 *
 * `--json` prints { "cluster": string, "records": [HistoryJson] } where HistoryJson is
 * { epoch, kind, outcome, reason, fromPrimary, candidate, handOver, opId,
 *   takeoverFrom: { candidate, epoch } | null, startedAt, endedAt, durationMs,
 *   steps: [StepJson (operation-progress.ts)], orphanedBranches: string[] } (absent values null).
 */

import type { HistoryRecordMessage, ListHistoryReply, ListHistoryRequest } from '../proto/control-types';
import { connectionArgs, connectionOptions, helpText, limitArg, limitOption, parseOptions, type ConnectionArgs, type Env, type OptionSpec } from './cli-args';
import { ExitCode, processIo, runCommand, type CliIo } from './cli-io';
import { withConnection } from './control-client';
import { formatOptionalDuration, formatTable, formatTime, none, nullable, orNone } from './format-table';
import { stepJson, type StepJson } from './operation-progress';

export interface HistoryArgs {
  connection: ConnectionArgs;
  limit: number;
}

export const defaultLimit = 10;
export const maxLimit = 1000;

const specs: readonly OptionSpec[] = [
  limitOption(defaultLimit, maxLimit),
  ...connectionOptions,
];
const usage = 'doltgate history [--limit N] [--etcd URL | --config FILE | --agent HOST:PORT] [--json]';
const description = 'Past failovers and switchovers, newest first, with every step and any orphaned branches.';

export function parseHistoryArgs(argv: readonly string[], env: Env): HistoryArgs | 'help' {
  const values = parseOptions(argv, specs);
  if (values.help === true) return 'help';
  return { connection: connectionArgs(values, env), limit: limitArg(values, defaultLimit, maxLimit) };
}

export interface HistoryJson {
  epoch: number;
  kind: string;
  outcome: string;
  reason: string;
  fromPrimary: string | null;
  candidate: string;
  handOver: boolean;
  opId: string | null;
  takeoverFrom: { candidate: string; epoch: number } | null;
  startedAt: string;
  endedAt: string | null;
  durationMs: number | null;
  steps: StepJson[];
  orphanedBranches: string[];
}

function durationOf(record: HistoryRecordMessage): number | undefined {
  if (record.endedAt === undefined) return undefined;
  const ms = Date.parse(record.endedAt) - Date.parse(record.startedAt);
  return Number.isFinite(ms) && ms >= 0 ? ms : undefined;
}

export function historyJson(record: HistoryRecordMessage): HistoryJson {
  return {
    epoch: record.epoch,
    kind: record.kind,
    outcome: record.outcome,
    reason: record.reason,
    fromPrimary: nullable(record.fromPrimary),
    candidate: record.candidate,
    handOver: record.handOver,
    opId: nullable(record.opId),
    takeoverFrom: record.takeoverFrom === null ? null : { candidate: record.takeoverFrom.candidate, epoch: record.takeoverFrom.epoch },
    startedAt: record.startedAt,
    endedAt: nullable(record.endedAt),
    durationMs: nullable(durationOf(record)),
    steps: record.steps.map(stepJson),
    orphanedBranches: record.orphanedBranches,
  };
}

/** One block per record: a summary line, the reason, a step table, orphaned branches. */
export function formatHistory(cluster: string, records: readonly HistoryRecordMessage[]): string {
  if (records.length === 0) return `cluster ${cluster} has no failover history yet`;
  const blocks = records.map((record) => {
    const lines: string[] = [];
    const from = record.fromPrimary === undefined ? '' : `${record.fromPrimary} -> `;
    const op = record.opId === undefined ? '' : `  op ${record.opId}`;
    lines.push(
      `epoch ${record.epoch}  ${record.kind}  ${record.outcome}  ${from}${record.candidate}  started ${formatTime(record.startedAt)}  took ${formatOptionalDuration(durationOf(record))}${op}`,
    );
    if (record.reason !== '') lines.push(`  reason: ${record.reason}`);
    if (record.takeoverFrom !== null) lines.push(`  took over from ${record.takeoverFrom.candidate} (epoch ${record.takeoverFrom.epoch})`);
    if (record.steps.length > 0) {
      const rows = record.steps.map((step) => [step.name, step.state, formatOptionalDuration(step.durationMs), orNone(step.executor), formatTime(step.startedAt), step.detail || none]);
      lines.push(formatTable(['STEP', 'STATE', 'DURATION', 'NODE', 'STARTED', 'DETAIL'], rows, '  '));
    }
    if (record.orphanedBranches.length > 0) lines.push(`  orphaned branches: ${record.orphanedBranches.join(', ')}`);
    return lines.join('\n');
  });
  return blocks.join('\n\n');
}

export async function runCli(argv: string[], io: CliIo = processIo, env: Env = process.env): Promise<number> {
  return runCommand('history', io, () => argv.includes('--json'), async () => {
    const args = parseHistoryArgs(argv, env);
    if (args === 'help') {
      io.out(helpText(usage, description, specs));
      return ExitCode.ok;
    }
    const reply = await withConnection(args.connection, (connection) => connection.call<ListHistoryRequest, ListHistoryReply>('listHistory', { limit: args.limit }));
    const cluster = args.connection.cluster;
    io.out(args.connection.json ? JSON.stringify({ cluster, records: reply.records.map(historyJson) }, null, 2) : formatHistory(cluster, reply.records));
    return ExitCode.ok;
  });
}

export const command = { name: 'history', summary: 'list past failovers and switchovers with their steps ([--limit N])', run: runCli };
