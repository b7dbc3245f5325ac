/**
 * `doltgate agent --config agent.yaml`: the node's name and cluster, where etcd is, how to reach
 * (and, in managed mode, run) the local Dolt, and the HA knobs. Loading validates everything and
 * names the offending field; nothing starts on a bad config.
 */

import { ConfigReader, isRecord, type Raw } from '../common/config-reader';
import { parseEtcdAccess, type EtcdAccess } from '../common/etcd-access';
import { readFileSync } from 'node:fs';
import { resolve, dirname } from 'node:path';
import { parse } from 'yaml';
import { clusterKeys, isValidNodeName } from '../proto';
import { haConfig, type HaConfig } from './ha';
import { DATABASE_PLACEHOLDER } from './dolt/server-config';
import { DEFAULT_RETENTION, type RetentionPolicy } from './retention';

export type DoltMode = 'managed' | 'external';

/**
 * How commits reach the other nodes: `remote` (push-on-write to a remote, replicas pull) or
 * `cluster` (Dolt's direct-to-standby replication; server-config.ts, ClusterReplicationSettings).
 */
export type ReplicationMode = 'remote' | 'cluster';

export interface ClusterModeConfig {
  /** This node's cluster remotesapi listener (Dolt's cluster.remotesapi), which peers push to. */
  remotesapi: { host: string; port: number };
  /** Every other node by name, and its remotesapi URL (http://host:port). */
  peers: Array<{ name: string; remotesapiUrl: string }>;
  /** dolt_cluster_ack_writes_timeout_secs on the primary (0-60): 0 replicates asynchronously. */
  ackWritesTimeoutSecs: number;
}

export interface AgentConfig {
  name: string;
  cluster: string;
  /** Endpoints, TLS and user/password (common/etcd-access.ts), and the per-call deadline. */
  etcd: EtcdAccess & { callTimeoutMs: number };
  dolt: {
    mode: DoltMode;
    /** managed: the dolt binary, the node dir (YAML, log, DOLT_ROOT_PATH=<nodeDir>/home) and data dir. */
    binary: string;
    nodeDir: string;
    dataDir: string;
    host: string;
    port: number;
    user: string;
    password: string;
    remote: string;
    /**
     * Where a database created at run time gets its remote, `{database}` standing for its name
     * (Dolt's dolt_replication_remote_url_template); the URL of every existing database must follow
     * it too. null: databases created at run time are not replicated (the status says so).
     */
    remoteUrlTemplate: string | null;
    /**
     * The only directory SQL may read files from or write them to (SELECT ... INTO OUTFILE,
     * LOAD_FILE, LOAD DATA INFILE): Dolt's secure_file_priv. Default `<node_dir>/files`, so SQL
     * never reaches the agent's config or Dolt's data.
     */
    secureFilePriv: string;
    /** Dolt's local_infile (LOAD DATA LOCAL through a proxy user with allow_local_infile); default off. */
    localInfile: boolean;
    /** What other nodes and proxies use to reach this Dolt (defaults to host:port). */
    advertise: { host: string; port: number };
    replication: ReplicationMode;
    /** Set exactly when replication is `cluster`. */
    cluster: ClusterModeConfig | null;
  };
  priority: number;
  nofailover: boolean;
  /** Health check cadence and the consecutive failures that make the node unhealthy. */
  checkIntervalMs: number;
  checkTimeoutMs: number;
  /** How often heads and the not-on-remote gap are measured (fetches on a primary). */
  inspectIntervalMs: number;
  ha: HaConfig;
  /** How many finished operations and history records the leader keeps in etcd (retention.ts). */
  retention: RetentionPolicy;
  backup: { url: string; intervalMs: number; maxAgeMs: number } | null;
  grpc: { host: string; port: number } | null;
  /** The gRPC address put in the member record for the CLI to dial (defaults to grpc). */
  grpcAdvertise: { host: string; port: number } | null;
  grpcTls: { cert: string; key: string; ca?: string; requireClientCert: boolean } | null;
  /** Token the CLI must present for calls that change anything; null = none. */
  grpcToken: string | null;
  /**
   * The control API runs with neither a token nor client certificates: anyone who can connect may
   * switch over, fail over or pause. Only when set explicitly (`grpc_insecure_no_auth: true`).
   */
  grpcInsecureNoAuth: boolean;
  metrics: { host: string; port: number } | null;
  /** Peers' hosts (and etcd's) to ping, to tell "Dolt down" from "host unreachable". */
  probeHosts: Array<{ host: string; port: number }>;
}

export class AgentConfigError extends Error {
  readonly code = 'AGENT_CONFIG';
  constructor(file: string, field: string, detail: string) {
    super(`${file}: ${field} ${detail}`);
  }
}

/** Defaults sized for the failover targets: a Dolt crash recovered in under 5 s, a lost host under 10 s. */
export const agentHaDefaults: Partial<HaConfig> = {
  failureThreshold: 3,
  leaseTtlMs: 5_000,
  fenceMarginMs: 2_000,
  reclaimGraceMs: 3_000,
  minFailoverIntervalMs: 30_000,
};

export function parseAgentConfig(text: string, file = 'agent.yaml'): AgentConfig {
  const reader: ConfigReader = new ConfigReader((field, detail) => new AgentConfigError(file, field, detail), dirname(resolve(file)));
  let raw: unknown;
  try {
    raw = parse(text);
  } catch (error) {
    throw new AgentConfigError(file, '(file)', `is not valid YAML: ${(error as Error).message}`);
  }
  if (!isRecord(raw)) reader.fail('(file)', 'must be a YAML mapping');
  const absolute = (path: string): string => reader.resolvePath(path);

  const name = reader.string(raw, 'name', 'name');
  if (!isValidNodeName(name)) reader.fail('name', 'must be 1-63 characters of a-z, 0-9, ".", "-", "_"');
  const cluster = reader.string(raw, 'cluster', 'cluster', 'default');
  try {
    clusterKeys(cluster);
  } catch (error) {
    reader.fail('cluster', (error as Error).message);
  }

  const etcdRaw = reader.section(raw, 'etcd') ?? {};
  const endpoints = etcdRaw.endpoints;
  if (!Array.isArray(endpoints) || endpoints.length === 0 || !endpoints.every((url) => typeof url === 'string' && /^https?:\/\//.test(url))) {
    reader.fail('etcd.endpoints', 'must be a list of http(s):// URLs');
  }
  const etcdAccess = parseEtcdAccess(etcdRaw, endpoints as string[], { section: 'etcd', env: process.env, resolve: absolute, fail: (path, message) => reader.fail(path, message) });

  const doltRaw = reader.section(raw, 'dolt') ?? {};
  const mode = (doltRaw.mode ?? 'managed') as DoltMode;
  if (mode !== 'managed' && mode !== 'external') reader.fail('dolt.mode', 'must be managed or external');
  const host = reader.string(doltRaw, 'host', 'dolt.host', '127.0.0.1');
  const port = reader.int(doltRaw, 'port', 'dolt.port', 3306, 1, 65535);
  const nodeDir = absolute(reader.string(doltRaw, 'node_dir', 'dolt.node_dir', '.'));
  const advertise = reader.address(doltRaw, 'advertise') ?? { host, port };
  const replication = (doltRaw.replication ?? 'remote') as ReplicationMode;
  if (replication !== 'remote' && replication !== 'cluster') reader.fail('dolt.replication', 'must be remote or cluster');
  const clusterMode = replication === 'cluster' ? clusterModeConfig(reader, doltRaw, name, mode) : null;
  if (replication === 'remote' && doltRaw.cluster !== undefined) reader.fail('dolt.cluster', 'is for dolt.replication: cluster; this node replicates through a remote');

  const haRaw = reader.section(raw, 'ha') ?? {};
  const overrides: Partial<HaConfig> = { ...agentHaDefaults };
  const haFields: Array<[string, keyof HaConfig]> = [
    ['failure_threshold', 'failureThreshold'],
    ['lease_ttl_ms', 'leaseTtlMs'],
    ['fence_margin_ms', 'fenceMarginMs'],
    ['min_failover_interval_ms', 'minFailoverIntervalMs'],
    ['max_commits_behind', 'maxCommitsBehind'],
    ['reclaim_grace_ms', 'reclaimGraceMs'],
    ['op_timeout_ms', 'opTimeoutMs'],
  ];
  for (const [yamlName, field] of haFields) {
    if (haRaw[yamlName] !== undefined) (overrides as Record<string, unknown>)[field] = reader.int(haRaw, yamlName, `ha.${yamlName}`, 0);
  }
  if (haRaw.initial_primary !== undefined) overrides.initialPrimary = reader.string(haRaw, 'initial_primary', 'ha.initial_primary');
  let ha: HaConfig;
  try {
    ha = haConfig(overrides);
  } catch (error) {
    reader.fail('ha', (error as Error).message);
  }

  const grpcTlsRaw = reader.section(raw, 'grpc_tls') ?? null;
  const token = grpcToken(reader, raw);
  const insecureNoAuth = reader.bool(raw, 'grpc_insecure_no_auth', 'grpc_insecure_no_auth', false);
  const mtls = grpcTlsRaw !== null && grpcTlsRaw.require_client_cert === true;
  if (raw.grpc !== undefined && token === null && !mtls && !insecureNoAuth) {
    reader.fail('grpc', 'the control API needs authentication: set grpc_token_env (or grpc_token), or grpc_tls with require_client_cert: true; grpc_insecure_no_auth: true runs it open to anyone who can connect');
  }
  const backupRaw = reader.section(raw, 'backup') ?? null;
  const retentionRaw = reader.section(raw, 'retention') ?? {};
  const probeRaw = raw.probe_hosts ?? [];
  if (!Array.isArray(probeRaw)) reader.fail('probe_hosts', 'must be a list of "host:port"');

  return {
    name,
    cluster,
    etcd: { ...etcdAccess, callTimeoutMs: reader.int(etcdRaw, 'call_timeout_ms', 'etcd.call_timeout_ms', 1500, 100) },
    dolt: {
      mode,
      binary: reader.string(doltRaw, 'binary', 'dolt.binary', 'dolt'),
      nodeDir,
      dataDir: absolute(reader.string(doltRaw, 'data_dir', 'dolt.data_dir', `${nodeDir}/data`)),
      host,
      port,
      user: reader.string(doltRaw, 'user', 'dolt.user', 'root'),
      password: typeof doltRaw.password === 'string' ? doltRaw.password : '',
      remote: reader.string(doltRaw, 'remote', 'dolt.remote', 'origin'),
      remoteUrlTemplate: remoteUrlTemplate(reader, doltRaw),
      secureFilePriv: absolute(reader.string(doltRaw, 'secure_file_priv', 'dolt.secure_file_priv', `${nodeDir}/files`)),
      localInfile: reader.bool(doltRaw, 'local_infile', 'dolt.local_infile', false),
      advertise,
      replication,
      cluster: clusterMode,
    },
    priority: reader.int(raw, 'priority', 'priority', 100, 0),
    nofailover: reader.bool(raw, 'nofailover', 'nofailover', false),
    checkIntervalMs: reader.int(raw, 'check_interval_ms', 'check_interval_ms', 500, 50),
    checkTimeoutMs: reader.int(raw, 'check_timeout_ms', 'check_timeout_ms', 1000, 50),
    inspectIntervalMs: reader.int(raw, 'inspect_interval_ms', 'inspect_interval_ms', 2000, 100),
    ha,
    retention: {
      keepFinishedOps: reader.int(retentionRaw, 'finished_ops', 'retention.finished_ops', DEFAULT_RETENTION.keepFinishedOps, 1),
      keepHistory: reader.int(retentionRaw, 'history', 'retention.history', DEFAULT_RETENTION.keepHistory, 1),
      keepAudit: reader.int(retentionRaw, 'audit', 'retention.audit', DEFAULT_RETENTION.keepAudit, 1),
    },
    backup: backupRaw
      ? {
          url: reader.string(backupRaw, 'url', 'backup.url'),
          intervalMs: reader.int(backupRaw, 'interval_ms', 'backup.interval_ms', 60_000, 1000),
          maxAgeMs: reader.int(backupRaw, 'max_age_ms', 'backup.max_age_ms', 600_000, 1000),
        }
      : null,
    grpc: reader.address(raw, 'grpc'),
    grpcAdvertise: reader.address(raw, 'grpc_advertise') ?? reader.address(raw, 'grpc'),
    grpcTls: grpcTlsRaw
      ? {
          cert: absolute(reader.string(grpcTlsRaw, 'cert', 'grpc_tls.cert')),
          key: absolute(reader.string(grpcTlsRaw, 'key', 'grpc_tls.key')),
          ca: grpcTlsRaw.ca === undefined ? undefined : absolute(reader.string(grpcTlsRaw, 'ca', 'grpc_tls.ca')),
          requireClientCert: reader.bool(grpcTlsRaw, 'require_client_cert', 'grpc_tls.require_client_cert', false),
        }
      : null,
    grpcToken: token,
    grpcInsecureNoAuth: insecureNoAuth,
    metrics: reader.address(raw, 'metrics'),
    probeHosts: (probeRaw as unknown[]).map((entry, i) => {
      const address = reader.address({ [`probe_hosts[${i}]`]: entry }, `probe_hosts[${i}]`);
      return address as { host: string; port: number };
    }),
  };
}

function clusterModeConfig(reader: ConfigReader, doltRaw: Raw, self: string, mode: DoltMode): ClusterModeConfig {
  // Promotion and fencing are role changes of a server the agent runs.
  if (mode !== 'managed') reader.fail('dolt.replication', 'cluster needs dolt.mode: managed (the agent changes the cluster role of the Dolt it runs)');
  if (doltRaw.remote_url_template !== undefined) reader.fail('dolt.remote_url_template', 'is for remote replication; in cluster mode databases created at run time replicate by themselves');
  const section = reader.section(doltRaw, 'cluster', 'dolt.cluster');
  if (section === undefined) reader.fail('dolt.cluster', 'is required with dolt.replication: cluster (remotesapi and peers)');
  const remotesapi = reader.address(section, 'remotesapi', 'dolt.cluster.remotesapi');
  if (remotesapi === null) reader.fail('dolt.cluster.remotesapi', 'is required: the host:port peers push this node\'s databases to');
  const peersRaw = section.peers;
  if (!isRecord(peersRaw) || Object.keys(peersRaw).length === 0) reader.fail('dolt.cluster.peers', 'must map every other node\'s name to its remotesapi URL (http://host:port)');
  const peers = Object.entries(peersRaw).map(([peer, url]) => {
    if (!isValidNodeName(peer)) reader.fail(`dolt.cluster.peers.${peer}`, 'is not a node name (1-63 characters of a-z, 0-9, ".", "-", "_")');
    if (peer === self) reader.fail(`dolt.cluster.peers.${peer}`, 'names this node; list only the others');
    if (typeof url !== 'string' || !/^https?:\/\/[^/\s]+\/?$/.test(url)) reader.fail(`dolt.cluster.peers.${peer}`, 'must be the peer\'s remotesapi URL, http://host:port');
    return { name: peer, remotesapiUrl: url.replace(/\/+$/, '') };
  });
  return {
    remotesapi,
    peers: peers.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)),
    ackWritesTimeoutSecs: reader.int(section, 'ack_writes_timeout_secs', 'dolt.cluster.ack_writes_timeout_secs', 0, 0, 60),
  };
}

function remoteUrlTemplate(reader: ConfigReader, doltRaw: Raw): string | null {
  if (doltRaw.remote_url_template === undefined || doltRaw.remote_url_template === null) return null;
  const template = reader.string(doltRaw, 'remote_url_template', 'dolt.remote_url_template');
  if (!template.includes(DATABASE_PLACEHOLDER)) reader.fail('dolt.remote_url_template', `must contain ${DATABASE_PLACEHOLDER}, where each database's name goes (e.g. file:///remotes/${DATABASE_PLACEHOLDER})`);
  if (!/^[a-z][a-z0-9+.-]*:\/\//.test(template)) reader.fail('dolt.remote_url_template', 'must be a URL (file://, http(s)://, aws://, gs://, ...)');
  return template;
}

/** `grpc_token` inline, or `grpc_token_env` naming an environment variable that holds it. */
function grpcToken(reader: ConfigReader, raw: Raw): string | null {
  let value: string | undefined;
  let path = 'grpc_token';
  if (raw.grpc_token !== undefined) {
    value = reader.string(raw, 'grpc_token', 'grpc_token');
  } else {
    if (raw.grpc_token_env === undefined) return null;
    path = 'grpc_token_env';
    const name = reader.string(raw, 'grpc_token_env', 'grpc_token_env');
    value = process.env[name];
    if (!value) reader.fail('grpc_token_env', `names ${name}, which is not set in the environment`);
  }
  // A token anyone could guess is no authentication (openssl rand -hex 16 gives 32 characters).
  if (value.length < MIN_TOKEN_LENGTH) reader.fail(path, `the token must be at least ${MIN_TOKEN_LENGTH} characters (openssl rand -hex 24 makes one)`);
  return value;
}

const MIN_TOKEN_LENGTH = 16;

export function loadAgentConfig(file: string): AgentConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new AgentConfigError(file, '(file)', `cannot be read: ${(error as Error).message}`);
  }
  return parseAgentConfig(text, file);
}
