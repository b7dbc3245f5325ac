/**
 * `doltgate outcome <token>`: did the statement behind an outcome token commit? The token comes
 * from the 2013 error of a COMMIT (or autocommit write) whose answer was lost. Every agent is
 * asked whether its own Dolt holds the commit (FindCommit), the status says who is primary, and
 * the verdict is judged as the proxy's `SELECT doltgate_outcome(...)` judges it
 * (proto/outcome.ts): committed, set aside, not committed, or unknown. Read-only.
 *
 * Exit code 0 for a verdict (committed, set aside, not committed); 4 (unreachable) for unknown.
 * `--json` prints { "token", "verdict", "detail", "nodes": { <node>: finding } }.
 */

import { judgeOutcome, notAnOutcomeToken, parseOutcomeToken, type NodeFinding } from '../proto/outcome';
import type { ClusterStatus, FindCommitReply, FindCommitRequest, GetStatusRequest } from '../proto/control-types';
import { connectionArgs, connectionOptions, helpText, parseOptions, type ConnectionArgs, type Env, type OptionSpec } from './cli-args';
import { ExitCode, processIo, runCommand, UsageError, type CliIo } from './cli-io';
import { withConnection } from './control-client';

export interface OutcomeArgs {
  token: string;
  connection: ConnectionArgs;
}

const specs: readonly OptionSpec[] = [...connectionOptions];
const usage = 'doltgate outcome TOKEN [--etcd URL | --config FILE | --agent HOST:PORT] [--json]';
const description = "Whether the statement an outcome token names (from a lost COMMIT's 2013 error) committed.";

export function parseOutcomeArgs(argv: readonly string[], env: Env): OutcomeArgs | 'help' {
  const [first, ...rest] = argv;
  if (first === '--help' || first === '-h') return 'help';
  if (first === undefined || first.startsWith('-')) throw new UsageError(`a token is needed: ${usage}`);
  if (parseOutcomeToken(first) === null) throw new UsageError(notAnOutcomeToken(first));
  const values = parseOptions(rest, specs);
  if (values.help === true) return 'help';
  return { token: first, connection: connectionArgs(values, env) };
}

/** What each node said, by node name; agents that did not answer are unreachable. */
export function findingsOf(answers: ReadonlyArray<{ agent: string; reply: FindCommitReply } | { agent: string; error: string }>): Map<string, NodeFinding> {
  const findings = new Map<string, NodeFinding>();
  for (const answer of answers) {
    if ('reply' in answer) {
      const r = answer.reply;
      findings.set(r.node, r.found ? { kind: 'found', database: r.database, hash: r.hash, liveBranches: r.liveBranches } : { kind: 'absent' });
    } else {
      // Named by address when the agent never answered: it cannot be matched to a node.
      findings.set(answer.agent, { kind: 'unreachable', why: answer.error });
    }
  }
  return findings;
}

export function judgeFindings(token: string, primary: string | null, findings: ReadonlyMap<string, NodeFinding>): { verdict: string; detail: string } {
  const ranOn = (parseOutcomeToken(token) as { node: string }).node;
  const unheard = (node: string): NodeFinding => ({ kind: 'unreachable', why: `no answer from ${node}'s agent` });
  const onPrimary = primary === null ? null : findings.get(primary) ?? unheard(primary);
  const onRunner = ranOn === primary ? null : findings.get(ranOn) ?? unheard(ranOn);
  return judgeOutcome({ ranOn, primary, onPrimary, onRunner });
}

export async function runCli(argv: string[], io: CliIo = processIo, env: Env = process.env): Promise<number> {
  return runCommand('outcome', io, () => argv.includes('--json'), async () => {
    const args = parseOutcomeArgs(argv, env);
    if (args === 'help') {
      io.out(helpText(usage, description, specs));
      return ExitCode.ok;
    }
    const { status, answers } = await withConnection(args.connection, async (connection) => ({
      status: await connection.call<GetStatusRequest, ClusterStatus>('getStatus', {}),
      answers: await connection.callEach<FindCommitRequest, FindCommitReply>('findCommit', { token: args.token }),
    }));
    const primary = status.state === 'stable' ? status.primary ?? null : null;
    const findings = findingsOf(answers);
    const answer = judgeFindings(args.token, primary, findings);
    if (args.connection.json) {
      io.out(JSON.stringify({ token: args.token, verdict: answer.verdict, detail: answer.detail, primary, nodes: Object.fromEntries(findings) }, null, 2));
    } else {
      io.out(`${answer.verdict}: ${answer.detail}`);
    }
    return answer.verdict === 'unknown' ? ExitCode.unreachable : ExitCode.ok;
  });
}

export const command = { name: 'outcome', summary: 'whether the statement behind an outcome token (from a lost COMMIT) committed (TOKEN)', run: runCli };
