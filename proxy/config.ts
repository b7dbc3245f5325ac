/**
 * `doltgate proxy --config proxy.yaml`: where the proxy listens, who may log in, how it reaches
 * Dolt, where the routing truth comes from (etcd, or a static topology for setups without
 * agents), and the knobs of routing, the write hold and the backend pools. Loading validates
 * everything and names the offending field (`proxy.yaml: users[1].native_password_hash must be
 * ...`); nothing starts on a bad config.
 *
 * Secrets: proxy users are stored as hashes only — `native_password_hash` is MySQL's `*` + 40 hex
 * of SHA1(SHA1(pw)) and `caching_sha2_hash` is hex of SHA256(SHA256(pw)); `hashProxyPassword`
 * makes both (the future `doltgate proxy hash-password`). The backend password the proxy logs in
 * to Dolt with is needed in clear; give it inline (`backend_password`) or, better, name an
 * environment variable that holds it (`backend_password_env`). Nothing here is ever logged; the
 * `describe` helper gives the loggable summary.
 *
 * Relative file paths (TLS certificates and keys) are resolved against the config file's folder.
 */

import { ConfigReader, isRecord, type Raw } from '../common/config-reader';
import { ETCD_ACCESS_KEYS, parseEtcdAccess, type EtcdAccess } from '../common/etcd-access';
import { Buffer } from 'node:buffer';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parse } from 'yaml';
import { clusterKeys, isValidNodeName, type Topology, type TopologyNode } from '../proto';
import {
  AuthPlugin,
  cachingSha2PasswordHash,
  formatNativePasswordHash,
  MAX_ALLOWED_PACKET_CEILING,
  nativePasswordHash,
  parseNativePasswordHash,
} from './protocol';
import type { SelectionStrategy } from './routing/replica-selector';

export type ProxyAuthPlugin = 'mysql_native_password' | 'caching_sha2_password';

export interface ProxyUser {
  name: string;
  /** SHA1(SHA1(pw)), 20 bytes, or empty for the empty password; null when not configured. */
  nativeHash: Buffer | null;
  /** SHA256(SHA256(pw)), 32 bytes, or empty for the empty password; null when not configured. */
  cachingSha2Hash: Buffer | null;
  backendUser: string;
  backendPassword: string;
  /**
   * LOAD DATA LOCAL INFILE relayed for this user's sessions (off by default: a proxy must never
   * let a server read a client's files unasked). See local-infile.ts.
   */
  allowLocalInfile: boolean;
}

export interface ProxyTlsConfig {
  certFile: string;
  keyFile: string;
  /** Refuse clients that do not upgrade to TLS (ER_SECURE_TRANSPORT_REQUIRED). */
  required: boolean;
}

export interface BackendTlsConfig {
  /** CA bundle to verify Dolt's certificate; system CAs when null. */
  caFile: string | null;
  rejectUnauthorized: boolean;
  /** SNI / certificate name; the backend host when null. */
  serverName: string | null;
}

export interface ProxyConfig {
  /** The file it was read from, for messages ('<inline>' for parsed objects). */
  file: string;
  listen: { host: string; port: number };
  maxClientConnections: number;
  /** Largest packet accepted from a client (and from a backend); MySQL's max_allowed_packet. */
  maxAllowedPacket: number;
  handshakeTimeoutMs: number;
  /** Close a client connection idle between commands this long; 0 = never. */
  idleTimeoutMs: number;
  /** Give up on a backend that has not finished answering a command this long; 0 = never. */
  queryTimeoutMs: number;
  /** Name every commit with an outcome token, so a lost COMMIT's outcome can be asked (outcome-token.ts). */
  outcomeTokens: boolean;
  backendConnectTimeoutMs: number;
  /** The plugin named in the greeting; clients answering with the other one are switched. */
  defaultAuthPlugin: ProxyAuthPlugin;
  users: ProxyUser[];
  tls: ProxyTlsConfig | null;
  backendTls: BackendTlsConfig | null;
  cluster: string;
  /** Exactly one of etcd / staticTopology is set. */
  etcd: EtcdAccess | null;
  staticTopology: Topology | null;
  hold: { timeoutMs: number; maxHeld: number; maxEpisodeMs: number };
  routing: {
    strategy: SelectionStrategy;
    /** null: not set, the default for how the cluster replicates (routing/read-your-writes.ts). */
    readYourWritesMs: number | null;
    readOnlyProcedures: string[];
    writeFunctions: string[];
  };
  /**
   * Backend connections: `maxConnectionsPerNode` is this proxy's budget per Dolt node (keep the
   * sum over proxies, plus the agent's few, below Dolt's max_connections); a statement that
   * finds it used up waits up to `queueTimeoutMs` in a queue of at most `maxQueued`, then gets
   * 1040. `multiplexing`: sessions give connections back between statements (session-backends.ts).
   */
  pool: {
    maxConnectionsPerNode: number;
    queueTimeoutMs: number;
    maxQueued: number;
    maxIdlePerBackend: number;
    idleTimeoutMs: number;
    multiplexing: { enabled: boolean; lingerMs: number };
  };
  /**
   * What one client may make the proxy hold (session-memory.ts): replayed SET text, prepared
   * statements and their text per session, and `totalBytes` over all sessions. Past a bound the
   * statement is refused (1041 / 1461) and the session lives on.
   */
  sessionLimits: { maxReplayBytes: number; maxPreparedStatements: number; maxPreparedBytes: number; totalBytes: number };
  /**
   * Logging in (handshake-slots.ts, login-throttle.ts): connections not logged in yet have their
   * own bounds, apart from max_client_connections; failed logins delay further attempts from the
   * same address; RSA password exchanges before login are rationed.
   */
  login: {
    maxHandshaking: number;
    maxHandshakingPerAddress: number;
    minEvictableWaitMs: number;
    failedUserThreshold: number;
    failedAddressThreshold: number;
    failedDelayStepMs: number;
    maxFailedDelayMs: number;
    forgetFailuresAfterMs: number;
    rsaExchangesPerSecond: number;
  };
  metrics: { host: string; port: number } | null;
}

export class ProxyConfigError extends Error {
  readonly code = 'PROXY_CONFIG';
  constructor(
    file: string,
    readonly field: string,
    detail: string,
  ) {
    super(`${file}: ${field} ${detail}`);
  }
}

/** Both stored forms of a password, as the config wants them. */
export function hashProxyPassword(password: string): { native_password_hash: string; caching_sha2_hash: string } {
  return {
    native_password_hash: formatNativePasswordHash(nativePasswordHash(password)),
    caching_sha2_hash: cachingSha2PasswordHash(password).toString('hex'),
  };
}

export function loadProxyConfig(path: string, env: NodeJS.ProcessEnv = process.env): ProxyConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ProxyConfigError(path, '(file)', `cannot be read: ${(error as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = parse(text);
  } catch (error) {
    throw new ProxyConfigError(path, '(file)', `is not valid YAML: ${(error as Error).message}`);
  }
  return parseProxyConfig(raw, { file: path, baseDir: dirname(resolve(path)), env });
}

const TOP_LEVEL_KEYS = new Set([
  'listen', 'max_client_connections', 'max_allowed_packet', 'handshake_timeout_ms', 'idle_timeout_ms',
  'query_timeout_ms', 'outcome_tokens', 'backend_connect_timeout_ms', 'default_auth_plugin', 'users', 'tls', 'backend_tls',
  'cluster', 'etcd', 'static_topology', 'hold', 'routing', 'pool', 'session_limits', 'login', 'metrics',
]);

export interface ParseOptions {
  file?: string;
  baseDir?: string;
  env?: NodeJS.ProcessEnv;
}

/** Validates a decoded YAML document; throws ProxyConfigError naming the first bad field. */
export function parseProxyConfig(raw: unknown, options: ParseOptions = {}): ProxyConfig {
  const file = options.file ?? '<inline>';
  const r: ConfigReader = new ConfigReader((field, detail) => new ProxyConfigError(file, field, detail), options.baseDir ?? process.cwd());
  const env = options.env ?? process.env;
  if (!isRecord(raw)) r.fail('(document)', 'must be a mapping of settings');
  r.noUnknownKeys(raw, [...TOP_LEVEL_KEYS], '');

  const listenRaw = r.section(raw, 'listen', 'listen') ?? {};
  r.noUnknownKeys(listenRaw, ['host', 'port'], 'listen');
  const listen = {
    host: r.string(listenRaw, 'host', 'listen.host', '127.0.0.1'),
    port: r.int(listenRaw, 'port', 'listen.port', 3307, 0, 65535),
  };

  const defaultAuthPlugin = r.string(raw, 'default_auth_plugin', 'default_auth_plugin', AuthPlugin.CACHING_SHA2_PASSWORD);
  if (defaultAuthPlugin !== AuthPlugin.CACHING_SHA2_PASSWORD && defaultAuthPlugin !== AuthPlugin.MYSQL_NATIVE_PASSWORD) {
    r.fail('default_auth_plugin', 'must be caching_sha2_password or mysql_native_password');
  }

  const users = parseUsers(r, raw.users, env);
  const tls = parseTls(r, raw);
  const backendTls = parseBackendTls(r, raw);

  const cluster = r.string(raw, 'cluster', 'cluster', 'default');
  try {
    clusterKeys(cluster);
  } catch (error) {
    r.fail('cluster', (error as Error).message);
  }

  const etcdRaw = r.section(raw, 'etcd', 'etcd');
  const staticRaw = r.section(raw, 'static_topology', 'static_topology');
  if ((etcdRaw === undefined) === (staticRaw === undefined)) {
    r.fail('etcd', 'or static_topology: give exactly one (etcd endpoints to follow the agents, or a fixed topology)');
  }
  let etcd: ProxyConfig['etcd'] = null;
  if (etcdRaw !== undefined) {
    r.noUnknownKeys(etcdRaw, ['endpoints', ...ETCD_ACCESS_KEYS], 'etcd');
    const endpoints = r.stringList(etcdRaw, 'endpoints', 'etcd.endpoints');
    if (endpoints.length === 0) r.fail('etcd.endpoints', 'must list at least one endpoint (http://host:port)');
    for (const [i, e] of endpoints.entries()) {
      if (!/^https?:\/\/[^/\s]+(:\d+)?\/?$/.test(e)) r.fail(`etcd.endpoints[${i}]`, 'must look like http://host:port');
    }
    etcd = parseEtcdAccess(etcdRaw, endpoints, { section: 'etcd', env, resolve: (path) => r.resolvePath(path), fail: (path, message) => r.fail(path, message) });
  }
  const staticTopology = staticRaw === undefined ? null : parseStaticTopology(r, staticRaw);

  const holdRaw = r.section(raw, 'hold', 'hold') ?? {};
  r.noUnknownKeys(holdRaw, ['timeout_ms', 'max_held', 'max_episode_ms'], 'hold');
  const holdTimeoutMs = r.int(holdRaw, 'timeout_ms', 'hold.timeout_ms', 10_000, 1, 3_600_000);
  const routingRaw = r.section(raw, 'routing', 'routing') ?? {};
  r.noUnknownKeys(routingRaw, ['strategy', 'read_your_writes_ms', 'read_only_procedures', 'write_functions'], 'routing');
  const strategy = r.string(routingRaw, 'strategy', 'routing.strategy', 'round-robin');
  if (strategy !== 'round-robin' && strategy !== 'least-outstanding') {
    r.fail('routing.strategy', 'must be round-robin or least-outstanding');
  }
  const poolRaw = r.section(raw, 'pool', 'pool') ?? {};
  r.noUnknownKeys(poolRaw, ['max_connections_per_node', 'queue_timeout_ms', 'max_queued', 'max_idle_per_backend', 'idle_timeout_ms', 'multiplexing', 'linger_ms'], 'pool');
  const maxConnectionsPerNode = r.int(poolRaw, 'max_connections_per_node', 'pool.max_connections_per_node', 200, 1, 100_000);
  const limitsRaw = r.section(raw, 'session_limits', 'session_limits') ?? {};
  r.noUnknownKeys(limitsRaw, ['max_replay_bytes', 'max_prepared_statements', 'max_prepared_bytes', 'total_bytes'], 'session_limits');
  const sessionLimits: ProxyConfig['sessionLimits'] = {
    maxReplayBytes: r.int(limitsRaw, 'max_replay_bytes', 'session_limits.max_replay_bytes', 1024 * 1024, 1024, 1024 * 1024 * 1024),
    maxPreparedStatements: r.int(limitsRaw, 'max_prepared_statements', 'session_limits.max_prepared_statements', 1024, 1, 1_000_000),
    maxPreparedBytes: r.int(limitsRaw, 'max_prepared_bytes', 'session_limits.max_prepared_bytes', 16 * 1024 * 1024, 1024, 1024 * 1024 * 1024),
    totalBytes: r.int(limitsRaw, 'total_bytes', 'session_limits.total_bytes', 512 * 1024 * 1024, 1024 * 1024, 64 * 1024 * 1024 * 1024),
  };
  const handshakeTimeoutMs = r.int(raw, 'handshake_timeout_ms', 'handshake_timeout_ms', 10_000, 100, 3_600_000);
  const loginRaw = r.section(raw, 'login', 'login') ?? {};
  r.noUnknownKeys(loginRaw, ['max_handshaking', 'max_handshaking_per_address', 'min_evictable_wait_ms', 'failed_user_threshold', 'failed_address_threshold', 'failed_delay_step_ms', 'max_failed_delay_ms', 'forget_failures_after_ms', 'rsa_exchanges_per_second'], 'login');
  const maxHandshaking = r.int(loginRaw, 'max_handshaking', 'login.max_handshaking', 2048, 1, 1_000_000);
  const login: ProxyConfig['login'] = {
    maxHandshaking,
    maxHandshakingPerAddress: r.int(loginRaw, 'max_handshaking_per_address', 'login.max_handshaking_per_address', Math.min(512, maxHandshaking), 1, maxHandshaking),
    minEvictableWaitMs: r.int(loginRaw, 'min_evictable_wait_ms', 'login.min_evictable_wait_ms', Math.min(1000, Math.floor(handshakeTimeoutMs / 2)), 0, handshakeTimeoutMs),
    failedUserThreshold: r.int(loginRaw, 'failed_user_threshold', 'login.failed_user_threshold', 3, 1, 1_000_000),
    failedAddressThreshold: r.int(loginRaw, 'failed_address_threshold', 'login.failed_address_threshold', 30, 1, 1_000_000),
    failedDelayStepMs: r.int(loginRaw, 'failed_delay_step_ms', 'login.failed_delay_step_ms', 1000, 0, 3_600_000),
    // A held verdict must reach the client before the handshake times out, or it is never heard.
    maxFailedDelayMs: r.int(loginRaw, 'max_failed_delay_ms', 'login.max_failed_delay_ms', Math.min(5000, Math.floor(handshakeTimeoutMs / 2)), 0, Math.floor(handshakeTimeoutMs / 2)),
    forgetFailuresAfterMs: r.int(loginRaw, 'forget_failures_after_ms', 'login.forget_failures_after_ms', 10 * 60_000, 1000, 7 * 24 * 3600_000),
    rsaExchangesPerSecond: r.int(loginRaw, 'rsa_exchanges_per_second', 'login.rsa_exchanges_per_second', 100, 1, 1_000_000),
  };
  const metricsRaw = r.section(raw, 'metrics', 'metrics');
  let metrics: ProxyConfig['metrics'] = null;
  if (metricsRaw !== undefined) {
    r.noUnknownKeys(metricsRaw, ['host', 'port'], 'metrics');
    metrics = {
      host: r.string(metricsRaw, 'host', 'metrics.host', '127.0.0.1'),
      port: r.int(metricsRaw, 'port', 'metrics.port', 9104, 0, 65535),
    };
  }

  return {
    file,
    listen,
    maxClientConnections: r.int(raw, 'max_client_connections', 'max_client_connections', 1000, 1, 1_000_000),
    maxAllowedPacket: r.int(raw, 'max_allowed_packet', 'max_allowed_packet', 64 * 1024 * 1024, 1024, MAX_ALLOWED_PACKET_CEILING),
    handshakeTimeoutMs,
    idleTimeoutMs: r.int(raw, 'idle_timeout_ms', 'idle_timeout_ms', 8 * 3600 * 1000, 0, 365 * 24 * 3600 * 1000),
    queryTimeoutMs: r.int(raw, 'query_timeout_ms', 'query_timeout_ms', 0, 0, 365 * 24 * 3600 * 1000),
    outcomeTokens: r.bool(raw, 'outcome_tokens', 'outcome_tokens', true),
    backendConnectTimeoutMs: r.int(raw, 'backend_connect_timeout_ms', 'backend_connect_timeout_ms', 5000, 100, 600_000),
    defaultAuthPlugin: defaultAuthPlugin as ProxyAuthPlugin,
    users,
    tls,
    backendTls,
    cluster,
    etcd,
    staticTopology,
    hold: {
      timeoutMs: holdTimeoutMs,
      maxHeld: r.int(holdRaw, 'max_held', 'hold.max_held', 1000, 0, 1_000_000),
      // At least one write's own wait; past it a failover is stuck and needs a person.
      maxEpisodeMs: r.int(holdRaw, 'max_episode_ms', 'hold.max_episode_ms', 3 * holdTimeoutMs, holdTimeoutMs, 3 * 3_600_000),
    },
    routing: {
      strategy,
      readYourWritesMs: routingRaw.read_your_writes_ms === undefined ? null : r.int(routingRaw, 'read_your_writes_ms', 'routing.read_your_writes_ms', 0, 0, 3_600_000),
      readOnlyProcedures: r.stringList(routingRaw, 'read_only_procedures', 'routing.read_only_procedures'),
      writeFunctions: r.stringList(routingRaw, 'write_functions', 'routing.write_functions'),
    },
    pool: {
      maxConnectionsPerNode,
      queueTimeoutMs: r.int(poolRaw, 'queue_timeout_ms', 'pool.queue_timeout_ms', 5_000, 1, 3_600_000),
      maxQueued: r.int(poolRaw, 'max_queued', 'pool.max_queued', 10_000, 0, 10_000_000),
      maxIdlePerBackend: r.int(poolRaw, 'max_idle_per_backend', 'pool.max_idle_per_backend', maxConnectionsPerNode, 0, 100_000),
      idleTimeoutMs: r.int(poolRaw, 'idle_timeout_ms', 'pool.idle_timeout_ms', 60_000, 1000, 24 * 3600 * 1000),
      multiplexing: {
        enabled: r.bool(poolRaw, 'multiplexing', 'pool.multiplexing', true),
        lingerMs: r.int(poolRaw, 'linger_ms', 'pool.linger_ms', 1_000, 0, 3_600_000),
      },
    },
    sessionLimits,
    login,
    metrics,
  };
}

const USER_KEYS = ['name', 'native_password_hash', 'caching_sha2_hash', 'backend_user', 'backend_password', 'backend_password_env', 'allow_local_infile'];

function parseUsers(r: ConfigReader, value: unknown, env: NodeJS.ProcessEnv): ProxyUser[] {
  if (!Array.isArray(value) || value.length === 0) r.fail('users', 'must list at least one user');
  const seen = new Set<string>();
  return value.map((u, i) => {
    const path = `users[${i}]`;
    if (!isRecord(u)) r.fail(path, 'must be a mapping');
    if ('password' in u) r.fail(`${path}.password`, 'is not allowed: store hashes (doltgate proxy hash-password)');
    r.noUnknownKeys(u, USER_KEYS, path);
    const name = r.string(u, 'name', `${path}.name`);
    if (Buffer.byteLength(name) > 80 || name.includes('\0')) r.fail(`${path}.name`, 'must be at most 80 bytes without NUL');
    if (seen.has(name)) r.fail(`${path}.name`, `repeats user ${JSON.stringify(name)}`);
    seen.add(name);

    const nativeText = r.optionalString(u, 'native_password_hash', `${path}.native_password_hash`);
    let nativeHash: Buffer | null = null;
    if (nativeText !== null) {
      try {
        nativeHash = parseNativePasswordHash(nativeText);
      } catch {
        r.fail(`${path}.native_password_hash`, "must be '*' followed by 40 hex digits (MySQL's PASSWORD() form), or '' for no password");
      }
    }
    const shaText = r.optionalString(u, 'caching_sha2_hash', `${path}.caching_sha2_hash`);
    let cachingSha2Hash: Buffer | null = null;
    if (shaText !== null) {
      if (shaText !== '' && !/^[0-9a-fA-F]{64}$/.test(shaText)) {
        r.fail(`${path}.caching_sha2_hash`, "must be 64 hex digits of SHA256(SHA256(password)), or '' for no password");
      }
      cachingSha2Hash = Buffer.from(shaText, 'hex');
    }
    if (nativeHash === null && cachingSha2Hash === null) {
      r.fail(path, 'needs native_password_hash or caching_sha2_hash (or both)');
    }
    if (nativeHash !== null && cachingSha2Hash !== null && (nativeHash.length === 0) !== (cachingSha2Hash.length === 0)) {
      r.fail(path, 'has an empty password in one hash and not in the other');
    }

    const backendUser = r.string(u, 'backend_user', `${path}.backend_user`, name);
    const inline = r.optionalString(u, 'backend_password', `${path}.backend_password`);
    const envName = r.optionalString(u, 'backend_password_env', `${path}.backend_password_env`);
    if (inline !== null && envName !== null) r.fail(path, 'gives both backend_password and backend_password_env; keep one');
    let backendPassword = inline ?? '';
    if (envName !== null) {
      const fromEnv = env[envName];
      if (fromEnv === undefined) r.fail(`${path}.backend_password_env`, `names ${envName}, which is not set in the environment`);
      backendPassword = fromEnv;
    }
    const allowLocalInfile = r.bool(u, 'allow_local_infile', `${path}.allow_local_infile`, false);
    return { name, nativeHash, cachingSha2Hash, backendUser, backendPassword, allowLocalInfile };
  });
}

function parseTls(r: ConfigReader, raw: Raw): ProxyTlsConfig | null {
  const t = r.section(raw, 'tls', 'tls');
  if (t === undefined) return null;
  r.noUnknownKeys(t, ['cert', 'key', 'required'], 'tls');
  return { certFile: r.file(t, 'cert', 'tls.cert'), keyFile: r.file(t, 'key', 'tls.key'), required: r.bool(t, 'required', 'tls.required', false) };
}

function parseBackendTls(r: ConfigReader, raw: Raw): BackendTlsConfig | null {
  const t = r.section(raw, 'backend_tls', 'backend_tls');
  if (t === undefined) return null;
  r.noUnknownKeys(t, ['ca', 'reject_unauthorized', 'server_name'], 'backend_tls');
  return {
    caFile: t.ca === undefined || t.ca === null ? null : r.file(t, 'ca', 'backend_tls.ca'),
    rejectUnauthorized: r.bool(t, 'reject_unauthorized', 'backend_tls.reject_unauthorized', true),
    serverName: r.optionalString(t, 'server_name', 'backend_tls.server_name'),
  };
}

/**
 * `static_topology: { primary: n1, nodes: { n1: {host, port}, n2: {host, port, weight} } }`
 * becomes a stable Topology at epoch 1: the primary is the named node, every other node a replica.
 */
function parseStaticTopology(r: ConfigReader, t: Raw): Topology {
  r.noUnknownKeys(t, ['primary', 'nodes'], 'static_topology');
  const primary = r.string(t, 'primary', 'static_topology.primary');
  const nodesRaw = r.section(t, 'nodes', 'static_topology.nodes');
  if (nodesRaw === undefined || Object.keys(nodesRaw).length === 0) r.fail('static_topology.nodes', 'must name at least the primary');
  const nodes: Record<string, TopologyNode> = {};
  for (const [name, n] of Object.entries(nodesRaw)) {
    const path = `static_topology.nodes.${name}`;
    if (!isValidNodeName(name)) r.fail(path, 'has an invalid node name (a-z, 0-9, and . _ - after the first)');
    if (!isRecord(n)) r.fail(path, 'must be a mapping with host and port');
    r.noUnknownKeys(n, ['host', 'port', 'weight'], path);
    const node: TopologyNode = {
      sql: { host: r.string(n, 'host', `${path}.host`, '127.0.0.1'), port: r.int(n, 'port', `${path}.port`, 0, 1, 65535) },
      role: name === primary ? 'primary' : 'replica',
    };
    if (n.weight !== undefined) node.weight = r.int(n, 'weight', `${path}.weight`, 1, 0, 1_000_000);
    nodes[name] = node;
  }
  if (!(primary in nodes)) r.fail('static_topology.primary', `names ${primary}, which is not among static_topology.nodes`);
  return { epoch: 1, state: 'stable', primary, nodes, reason: 'static topology from the proxy config', at: new Date(0).toISOString() };
}

/** A loggable summary: no hashes, no passwords. */
export function describeProxyConfig(c: ProxyConfig): Record<string, unknown> {
  return {
    file: c.file,
    listen: `${c.listen.host}:${c.listen.port}`,
    users: c.users.map((u) => u.name),
    tls: c.tls !== null,
    backendTls: c.backendTls !== null,
    cluster: c.cluster,
    topologySource: c.etcd !== null ? `etcd ${c.etcd.endpoints.join(',')}` : 'static',
    routing: c.routing.strategy,
    hold: c.hold,
  };
}
