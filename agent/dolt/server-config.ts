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
  const writable = settings.role === 'primary' || settings.role === 'standby';
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
    '',
  ].join('\n');
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
export function replicationGlobalsForRole(role: DoltServerRole, remoteName: string, remoteUrlTemplate: string | null = null): Record<string, string | null> {
  const none = {
    'sqlserver.global.dolt_replicate_to_remote': null,
    'sqlserver.global.dolt_read_replica_remote': null,
    'sqlserver.global.dolt_replicate_all_heads': null,
    'sqlserver.global.dolt_replication_remote_url_template': null,
  };
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
