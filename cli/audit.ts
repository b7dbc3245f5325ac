/**
 * `doltgate audit [--limit N]`: the changing control calls the agents answered (switchover,
 * failover, pause, resume), newest first — when, which agent, the call, what authenticated the
 * caller (token, client certificate, or none), its address, what it said about itself, and the
 * outcome (accepted, refused, unauthenticated, failed). Read-only.
 *
 * `--json` prints { "cluster": string, "records": [{ at, agent, call, identity, peer,
 * requestedBy, outcome, detail, opId }] } (opId null when the call wrote no op).
 */

import type { AuditRecordMessage, ListAuditReply, ListAuditRequest } from '../proto/control-types';
import { connectionArgs, connectionOptions, helpText, limitArg, limitOption, parseOptions, type ConnectionArgs, type Env, type OptionSpec } from './cli-args';
import { ExitCode, processIo, runCommand, type CliIo } from './cli-io';
import { withConnection } from './control-client';
import { formatTable, formatTime, none, nullable } from './format-table';

export interface AuditArgs {
  connection: ConnectionArgs;
  limit: number;
}

export const defaultLimit = 20;
export const maxLimit = 1000;

const specs: readonly OptionSpec[] = [
  limitOption(defaultLimit, maxLimit),
  ...connectionOptions,
];
const usage = 'doltgate audit [--limit N] [--etcd URL | --config FILE | --agent HOST:PORT] [--json]';
const description = 'Who switched over, failed over, paused or resumed (or tried to), from where, and what came of it; newest first.';

export function parseAuditArgs(argv: readonly string[], env: Env): AuditArgs | 'help' {
  const values = parseOptions(argv, specs);
  if (values.help === true) return 'help';
  return { connection: connectionArgs(values, env), limit: limitArg(values, defaultLimit, maxLimit) };
}

export function auditJson(record: AuditRecordMessage): Record<string, unknown> {
  return { ...record, opId: nullable(record.opId) };
}

export function formatAudit(cluster: string, records: readonly AuditRecordMessage[]): string {
  if (records.length === 0) return `cluster ${cluster} has no audit records yet`;
  const rows = records.map((r) => [formatTime(r.at), r.call, r.outcome, r.identity, r.peer, r.requestedBy || none, r.agent, r.detail || none]);
  return formatTable(['AT', 'CALL', 'OUTCOME', 'AUTHENTICATED BY', 'FROM', 'SAYS IT IS', 'AGENT', 'DETAIL'], rows);
}

export async function runCli(argv: string[], io: CliIo = processIo, env: Env = process.env): Promise<number> {
  return runCommand('audit', io, () => argv.includes('--json'), async () => {
    const args = parseAuditArgs(argv, env);
    if (args === 'help') {
      io.out(helpText(usage, description, specs));
      return ExitCode.ok;
    }
    const reply = await withConnection(args.connection, (connection) => connection.call<ListAuditRequest, ListAuditReply>('listAudit', { limit: args.limit }));
    const cluster = args.connection.cluster;
    io.out(args.connection.json ? JSON.stringify({ cluster, records: reply.records.map(auditJson) }, null, 2) : formatAudit(cluster, reply.records));
    return ExitCode.ok;
  });
}

export const command = { name: 'audit', summary: 'list who switched over, failed over, paused or resumed, and from where ([--limit N])', run: runCli };
