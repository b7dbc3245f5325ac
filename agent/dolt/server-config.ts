/**
 * What a `dolt sql-server` needs to run in a role. Two places hold it, and which place a setting
 * lives in is a Dolt fact pinned by test/integration/dolt-facts.test.ts:
 *  - the YAML given to `--config`: data dir, listener, read_only and dolt_transaction_commit, which
 *    Dolt reads at start-up only;
 *  - the node's global config (`sqlserver.global.*` under DOLT_ROOT_PATH): the replication
 *    variables. Dolt wraps databases as read replicas while loading them, before the YAML's
 *    `system_variables` are applied, so replica settings in the YAML are silently ignored.
 */

/**
 * - primary: writable, pushes every commit to the remote. The only role that takes client
 *   writes, and the agent runs it only under the keeper guarding the leader lease.
 * - replica: read-only, pulls every head from the remote at each transaction.
 * - standby: writable, no replication either way: where failover recovery and rejoin run. It
 *   listens on a private loopback port (privatePort), never on the public one: a proxy that still
 *   routes to this node, or any client, cannot write while recovery decides which commits stay.
 * - fenced: read-only, no replication: a demoted primary whose commits the remote may lack. It
 *   must not pull, because a forced pull would overwrite (lose) those commits before the rejoin
 *   saves them.
 */
export type DoltServerRole = 'primary' | 'replica' | 'standby' | 'fenced';

/**
 * Dolt's own direct-to-standby replication (agent config `dolt.replication: cluster`). The roles
 * mean the same; how Dolt runs them differs (test/integration/dolt-cluster-mode-facts.test.ts):
 * - primary and replica run clustered (the YAML's `cluster:` section): the replica is Dolt's cluster
 *   standby, read-only by itself, taking the primary's pushes; the primary is the node that assumed
 *   the primary role at run time (dolt_assume_cluster_role), under the keeper.
 * - standby and fenced run without `cluster:`: a node that takes no push keeps the commits it alone
 *   holds, which a clustered standby would lose to the primary's root at once. Rejoin saves them
 *   (as orphan branches) while the node runs so, before it turns clustered.
 * Invariant: a clustered start is always a cluster standby. The role and epoch are written into the
 * node's global config before every clustered start (Dolt would restore a saved primary role), so a
 * stale primary restarted never comes back primary; it becomes primary only by a promotion at run time.
 */
export interface ClusterReplicationSettings {
  /** Every other node, by the name Dolt reports it under, and its cluster remotesapi URL (http://host:port). */
  peers: ReadonlyArray<{ name: string; remotesapiUrl: string }>;
  /** This node's cluster remotesapi listener, which its peers push to. */
  remotesapi: { host: string; port: number };
  /** The epoch written with the standby role before the next clustered start. */
  epoch: number;
}

/** Whether a server with these settings runs `role` clustered (cluster mode's primary and replica). */
export function runsClustered(settings: Pick<DoltServerSettings, 'cluster'>, role: DoltServerRole): boolean {
  return settings.cluster != null && (role === 'primary' || role === 'replica');
}

export interface DoltServerSettings {
  dataDir: string;
  host: string;
  port: number;
  role: DoltServerRole;
  remoteName: string;
  /**
   * Dolt's dolt_replication_remote_url_template (`{database}` stands for the name): a database
   * created at run time on the primary gets its remote from it and is pushed; a replica clones a
   * database it lacks from it when a query first names it (test/integration/dolt-new-database-facts).
   * null: databases created at run time are never replicated.
   */
  remoteUrlTemplate?: string | null;
  /** The standby's listener port on 127.0.0.1; null: the standby uses host and port (tests). */
  privatePort?: number | null;
  logLevel?: 'trace' | 'debug' | 'info' | 'warning' | 'error';
  maxConnections?: number;
  /** Dolt's secure_file_priv (the one directory SQL file I/O may touch); null: Dolt's default (none). */
  secureFilePriv?: string | null;
  /**
   * Dolt's local_infile: LOAD DATA LOCAL is refused (1105) unless it is 1, whatever the client
   * (dolt-local-infile-facts.test.ts). Off by default; the proxy still relays a file only for a
   * user allowed to send one.
   */
  localInfile?: boolean;
  /** Cluster mode's replication (see ClusterReplicationSettings); null or absent: remote mode. */
  cluster?: ClusterReplicationSettings | null;
}

function yamlString(value: string): string {
  return JSON.stringify(value);
}

/** Where a server in `settings.role` listens: the standby on its private port, the rest on the public one. */
export function listenerOf(settings: DoltServerSettings): { host: string; port: number } {
  if (settings.role === 'standby' && settings.privatePort != null) return { host: '127.0.0.1', port: settings.privatePort };
  return { host: settings.host, port: settings.port };
}

export function renderServerConfigYaml(settings: DoltServerSettings): string {
  const clustered = runsClustered(settings, settings.role);
  // A clustered server must not be read-only by YAML: a promoted node would still refuse writes.
  // Its cluster role is what keeps a standby read-only.
  const writable = clustered || settings.role === 'primary' || settings.role === 'standby';
  const listener = listenerOf(settings);
  return [
    '# Written by doltgate for this node\'s role; regenerated on every role change.',
    `log_level: ${settings.logLevel ?? 'info'}`,
    `data_dir: ${yamlString(settings.dataDir)}`,
    'listener:',
    `  host: ${yamlString(listener.host)}`,
    `  port: ${listener.port}`,
    `  max_connections: ${settings.maxConnections ?? 1000}`,
    'behavior:',
    `  read_only: ${writable ? 'false' : 'true'}`,
    // Every SQL COMMIT must become a Dolt commit, or push-on-write never fires for it.
    '  dolt_transaction_commit: true',
    // Read at start-up (unlike the replication variables, see the file doc): pinned in
    // dolt-privilege-facts.test.ts. Without it any SQL user reads and writes the host's files.
    ...systemVariables(settings),
    ...(clustered && settings.cluster ? clusterSection(settings.cluster) : []),
    '',
  ].join('\n');
}

/**
 * The YAML's `cluster:` section. Bootstrap values count only while the global config holds no role,
 * and the agent always writes one (clusterRoleGlobals); standby at 0 is what a node with none starts as.
 */
function clusterSection(cluster: ClusterReplicationSettings): string[] {
  return [
    'cluster:',
    '  standby_remotes:',
    ...cluster.peers.flatMap((peer) => [`    - name: ${yamlString(peer.name)}`, `      remote_url_template: ${yamlString(`${peer.remotesapiUrl.replace(/\/+$/, '')}/${DATABASE_PLACEHOLDER}`)}`]),
    '  bootstrap_role: standby',
    '  bootstrap_epoch: 0',
    '  remotesapi:',
    `    address: ${yamlString(cluster.remotesapi.host)}`,
    `    port: ${cluster.remotesapi.port}`,
  ];
}

/**
 * The global config's cluster role for a start in `role`: a clustered start is a standby at the
 * settings' epoch, always (the invariant above); other starts leave the saved role alone (Dolt
 * without `cluster:` does not read it).
 */
export function clusterRoleGlobals(settings: Pick<DoltServerSettings, 'cluster'>, role: DoltServerRole): Record<string, string | null> {
  if (!runsClustered(settings, role) || !settings.cluster) return {};
  return { 'sqlserver.cluster.dolt_cluster_role': 'standby', 'sqlserver.cluster.dolt_cluster_role_epoch': String(settings.cluster.epoch) };
}

/** The YAML's `system_variables`, read at start-up: secure_file_priv, local_infile. */
function systemVariables(settings: DoltServerSettings): string[] {
  const lines: string[] = [];
  if (settings.secureFilePriv != null) lines.push(`  secure_file_priv: ${yamlString(settings.secureFilePriv)}`);
  if (settings.localInfile === true) lines.push('  local_infile: 1');
  return lines.length === 0 ? [] : ['system_variables:', ...lines];
}

/**
 * The `sqlserver.global.*` entries for a role; null means "unset". Pushes are synchronous
 * (dolt_async_replication 0) so that an acknowledged COMMIT has at least been offered to the remote.
 */
export function replicationGlobalsForRole(role: DoltServerRole, remoteName: string, remoteUrlTemplate: string | null = null, clusterMode = false): Record<string, string | null> {
  const none = {
    'sqlserver.global.dolt_replicate_to_remote': null,
    'sqlserver.global.dolt_read_replica_remote': null,
    'sqlserver.global.dolt_replicate_all_heads': null,
    'sqlserver.global.dolt_replication_remote_url_template': null,
  };
  // Cluster mode replicates by Dolt's cluster section alone: no remote, whatever the role.
  if (clusterMode) return none;
  const template = remoteUrlTemplate === null ? {} : { 'sqlserver.global.dolt_replication_remote_url_template': remoteUrlTemplate };
  if (role === 'primary') {
    return { ...none, ...template, 'sqlserver.global.dolt_replicate_to_remote': remoteName, 'sqlserver.global.dolt_async_replication': '0' };
  }
  if (role === 'replica') {
    return { ...none, ...template, 'sqlserver.global.dolt_read_replica_remote': remoteName, 'sqlserver.global.dolt_replicate_all_heads': '1' };
  }
  return none;
}

/** The `{database}` placeholder Dolt fills in a remote URL template. */
export const DATABASE_PLACEHOLDER = '{database}';

/** The remote URL of `database` under a template. */
export function remoteUrlFor(template: string, database: string): string {
  return template.split(DATABASE_PLACEHOLDER).join(database);
}
