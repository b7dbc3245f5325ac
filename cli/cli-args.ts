/**
 * Command-line parsing for the control subcommands: a small table-driven option parser and the
 * connection options every subcommand shares (where the cluster is, credentials, output form).
 * Parsing is pure — argv and an environment in, a typed record or a UsageError out — so the unit
 * tests run it row by row.
 *
 * Forms accepted: `--name value`, `--name=value`, repeatable list options that also take comma
 * lists (`--etcd a,b --etcd c`), boolean flags, `-h`. Positionals are refused: every value is
 * named, so a script reads the same in a year.
 *
 * Where the cluster is, first match wins per field: the options (`--etcd`, `--cluster`,
 * `--agent`), then `--config agent.yaml` (its etcd endpoints and cluster), then the environment
 * (DOLTGATE_ETCD, DOLTGATE_CLUSTER, DOLTGATE_AGENT), then cluster `default`. DOLTGATE_TOKEN
 * stands in for `--token`, which keeps the token out of `ps` output and shell history.
 */

import type { EtcdAccess } from '../common/etcd-access';
import { loadAgentConfig } from '../agent/agent-config';
import { clusterKeys } from '../proto';
import { UsageError } from './cli-io';

export type OptionKind = 'flag' | 'string' | 'int' | 'list';

export interface OptionSpec {
  name: string;
  kind: OptionKind;
  /** Shown in --help after the option. */
  placeholder?: string;
  help: string;
}

export type OptionValue = boolean | string | number | string[];
export type ParsedOptions = Record<string, OptionValue | undefined>;

/** Parses argv against specs; unknown options, missing values and positionals are usage errors. */
export function parseOptions(argv: readonly string[], specs: readonly OptionSpec[]): ParsedOptions {
  const byName = new Map(specs.map((spec) => [spec.name, spec]));
  const values: ParsedOptions = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '-h') {
      values.help = true;
      continue;
    }
    if (!arg.startsWith('--') || arg === '--') throw new UsageError(`unexpected argument ${JSON.stringify(arg)}: every value is given with an option`);
    const equals = arg.indexOf('=');
    const name = arg.slice(2, equals === -1 ? undefined : equals);
    const spec = byName.get(name);
    if (spec === undefined) throw new UsageError(`unknown option --${name}`);
    if (spec.kind === 'flag') {
      if (equals !== -1) throw new UsageError(`--${name} takes no value`);
      values[name] = true;
      continue;
    }
    let raw: string;
    if (equals !== -1) {
      raw = arg.slice(equals + 1);
    } else {
      const next = argv[i + 1];
      if (next === undefined || next.startsWith('--')) throw new UsageError(`--${name} needs a value (${spec.placeholder ?? 'VALUE'})`);
      raw = next;
      i++;
    }
    if (spec.kind === 'int') {
      if (!/^\d+$/.test(raw)) throw new UsageError(`--${name} must be a whole number, not ${JSON.stringify(raw)}`);
      values[name] = Number(raw);
    } else if (spec.kind === 'list') {
      const items = raw.split(',').map((item) => item.trim()).filter((item) => item !== '');
      if (items.length === 0) throw new UsageError(`--${name} needs a value (${spec.placeholder ?? 'VALUE'})`);
      values[name] = [...((values[name] as string[] | undefined) ?? []), ...items];
    } else {
      if (raw === '') throw new UsageError(`--${name} needs a non-empty value`);
      values[name] = raw;
    }
  }
  return values;
}

/** Options every control subcommand takes. */
export const connectionOptions: readonly OptionSpec[] = [
  { name: 'etcd', kind: 'list', placeholder: 'URL', help: 'etcd endpoint (repeat, or a comma list); env DOLTGATE_ETCD' },
  { name: 'cluster', kind: 'string', placeholder: 'NAME', help: "cluster name (default 'default'); env DOLTGATE_CLUSTER" },
  { name: 'config', kind: 'string', placeholder: 'FILE', help: "an agent's agent.yaml: take etcd endpoints and cluster from it" },
  { name: 'agent', kind: 'list', placeholder: 'HOST:PORT', help: "an agent's control API, instead of finding agents in etcd; env DOLTGATE_AGENT" },
  { name: 'etcd-ca', kind: 'string', placeholder: 'FILE', help: "CA certificate (PEM) of etcd's server certificate (https:// endpoints); env DOLTGATE_ETCD_CA" },
  { name: 'etcd-cert', kind: 'string', placeholder: 'FILE', help: 'client certificate (PEM) for etcd with client-cert-auth; env DOLTGATE_ETCD_CERT' },
  { name: 'etcd-key', kind: 'string', placeholder: 'FILE', help: 'private key (PEM) of --etcd-cert; env DOLTGATE_ETCD_KEY' },
  { name: 'etcd-user', kind: 'string', placeholder: 'USER', help: 'etcd user (etcd auth enabled); its password from env DOLTGATE_ETCD_PASSWORD; env DOLTGATE_ETCD_USER' },
  { name: 'token', kind: 'string', placeholder: 'TOKEN', help: 'bearer token for changing calls; env DOLTGATE_TOKEN' },
  { name: 'tls', kind: 'flag', help: "use TLS with the system's CA certificates" },
  { name: 'tls-ca', kind: 'string', placeholder: 'FILE', help: "CA certificate (PEM) that signed the agents' certificates; implies --tls" },
  { name: 'tls-cert', kind: 'string', placeholder: 'FILE', help: 'client certificate (PEM) for agents that require one; implies --tls' },
  { name: 'tls-key', kind: 'string', placeholder: 'FILE', help: 'private key (PEM) of --tls-cert' },
  { name: 'timeout', kind: 'int', placeholder: 'MS', help: 'deadline of each call to etcd or an agent (default 5000)' },
  { name: 'json', kind: 'flag', help: 'print JSON for scripts instead of tables' },
  { name: 'help', kind: 'flag', help: 'show this help' },
];

/** `--limit N` of the listing commands (history, audit): newest N records. */
export function limitOption(defaultLimit: number, maxLimit: number): OptionSpec {
  return { name: 'limit', kind: 'int', placeholder: 'N', help: `newest N records (default ${defaultLimit}, at most ${maxLimit})` };
}

/** The `--limit` given, or the default; out of 1..maxLimit is a usage error. */
export function limitArg(values: ParsedOptions, defaultLimit: number, maxLimit: number): number {
  const limit = (values.limit as number | undefined) ?? defaultLimit;
  if (limit < 1 || limit > maxLimit) throw new UsageError(`--limit must be from 1 to ${maxLimit}`);
  return limit;
}

export interface TlsOptions {
  ca: string | null;
  cert: string | null;
  key: string | null;
}

export interface ConnectionArgs {
  cluster: string;
  /** etcd endpoints to find agents through; empty when `agents` is given. */
  etcd: string[];
  /** etcd's TLS and user/password (from the options, --config's agent.yaml, or DOLTGATE_ETCD_*). */
  etcdAccess: Pick<EtcdAccess, 'tls' | 'auth'>;
  /** Agents named directly (host:port), tried in this order; empty: find them in etcd. */
  agents: string[];
  token: string | null;
  tls: TlsOptions | null;
  timeoutMs: number;
  json: boolean;
}

export type Env = Readonly<Record<string, string | undefined>>;

export const defaultTimeoutMs = 5_000;

function envList(value: string | undefined): string[] {
  return (value ?? '').split(',').map((item) => item.trim()).filter((item) => item !== '');
}

/** etcd TLS and auth from --etcd-* and DOLTGATE_ETCD_* (the password only from the environment). */
function etcdAccessOf(values: ParsedOptions, env: Env): Pick<EtcdAccess, 'tls' | 'auth'> {
  const pick = (option: string, variable: string): string | null => (values[option] as string | undefined) ?? (env[variable] || null);
  const ca = pick('etcd-ca', 'DOLTGATE_ETCD_CA');
  const cert = pick('etcd-cert', 'DOLTGATE_ETCD_CERT');
  const key = pick('etcd-key', 'DOLTGATE_ETCD_KEY');
  if ((cert === null) !== (key === null)) throw new UsageError('--etcd-cert and --etcd-key go together');
  if (cert !== null && ca === null) throw new UsageError('--etcd-cert needs --etcd-ca');
  const user = pick('etcd-user', 'DOLTGATE_ETCD_USER');
  const password = env.DOLTGATE_ETCD_PASSWORD || null;
  if (user !== null && password === null) throw new UsageError('--etcd-user needs its password in DOLTGATE_ETCD_PASSWORD');
  return {
    tls: ca === null ? null : { caFile: ca, certFile: cert, keyFile: key },
    auth: user === null ? null : { user, password: password as string },
  };
}

/** The shared options as a ConnectionArgs; throws UsageError naming what is missing or wrong. */
export function connectionArgs(values: ParsedOptions, env: Env): ConnectionArgs {
  let configEtcd: string[] = [];
  let configCluster: string | undefined;
  let configAccess: Pick<EtcdAccess, 'tls' | 'auth'> | null = null;
  if (typeof values.config === 'string') {
    try {
      const config = loadAgentConfig(values.config);
      configEtcd = config.etcd.endpoints;
      configCluster = config.cluster;
      configAccess = { tls: config.etcd.tls, auth: config.etcd.auth };
    } catch (error) {
      throw new UsageError(`--config: ${(error as Error).message}`);
    }
  }
  const agents = (values.agent as string[] | undefined) ?? envList(env.DOLTGATE_AGENT);
  const explicitEtcd = values.etcd as string[] | undefined;
  const etcd = explicitEtcd ?? (configEtcd.length > 0 ? configEtcd : envList(env.DOLTGATE_ETCD));
  const cluster = (values.cluster as string | undefined) ?? configCluster ?? (env.DOLTGATE_CLUSTER || 'default');

  if (etcd.length === 0 && agents.length === 0) {
    throw new UsageError('say where the cluster is: --etcd URL, --config agent.yaml or --agent HOST:PORT');
  }
  for (const url of etcd) {
    if (!/^https?:\/\/[^/\s]+/.test(url)) throw new UsageError(`--etcd ${JSON.stringify(url)} is not an http:// or https:// URL`);
  }
  for (const agent of agents) {
    if (!/^[^\s:/]+:\d{1,5}$/.test(agent) && !/^\[[0-9a-fA-F:]+\]:\d{1,5}$/.test(agent)) {
      throw new UsageError(`--agent ${JSON.stringify(agent)} is not HOST:PORT`);
    }
  }
  try {
    clusterKeys(cluster);
  } catch (error) {
    throw new UsageError(`--cluster: ${(error as Error).message}`);
  }

  const ca = (values['tls-ca'] as string | undefined) ?? null;
  const cert = (values['tls-cert'] as string | undefined) ?? null;
  const key = (values['tls-key'] as string | undefined) ?? null;
  if ((cert === null) !== (key === null)) throw new UsageError('--tls-cert and --tls-key go together');
  const useTls = values.tls === true || ca !== null || cert !== null;

  const etcdAccess = configAccess ?? etcdAccessOf(values, env);

  const timeoutMs = (values.timeout as number | undefined) ?? defaultTimeoutMs;
  if (timeoutMs < 100) throw new UsageError('--timeout must be at least 100 ms');

  return {
    cluster,
    // Named agents win: etcd is then not needed at all (it may be the thing that is down).
    etcd: agents.length > 0 ? [] : etcd,
    etcdAccess,
    agents,
    token: (values.token as string | undefined) ?? (env.DOLTGATE_TOKEN || null),
    tls: useTls ? { ca, cert, key } : null,
    timeoutMs,
    json: values.json === true,
  };
}

/** `--help` text: usage line, description, then every option with its placeholder. */
export function helpText(usage: string, description: string, specs: readonly OptionSpec[]): string {
  const left = specs.map((spec) => `--${spec.name}${spec.kind === 'flag' ? '' : ` ${spec.placeholder ?? 'VALUE'}`}`);
  const width = Math.max(...left.map((text) => text.length));
  return [
    `usage: ${usage}`,
    '',
    description,
    '',
    'options:',
    ...specs.map((spec, i) => `  ${left[i].padEnd(width)}  ${spec.help}`),
    '',
    'exit codes: 0 ok, 1 operation failed, 2 usage error (or missing/rejected token), 3 refused,',
    '            4 etcd or agents unreachable, 5 unknown node',
  ].join('\n');
}
