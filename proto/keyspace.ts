/**
 * The etcd keyspace of one doltgate cluster: every key that agents, proxies and the CLI read or
 * write lives under `/doltgate/<cluster>/`. Both proxy/ and agent/ build key names only through
 * this module, so a rename happens in one place.
 *
 * Invariant: no key of one cluster is a prefix of a key of another (the cluster name may not
 * contain `/`), so a prefix watch on one cluster never sees another's keys.
 */

export class InvalidClusterNameError extends Error {
  readonly code = 'INVALID_CLUSTER_NAME';
  constructor(name: string) {
    super(`cluster name ${JSON.stringify(name)} is invalid: use 1-63 characters of a-z, 0-9, '-' and '_'`);
  }
}

const clusterNamePattern = /^[a-z0-9][a-z0-9_-]{0,62}$/;
const nodeNamePattern = /^[a-z0-9][a-z0-9_.-]{0,62}$/;

export function isValidNodeName(name: string): boolean {
  return nodeNamePattern.test(name);
}

export interface ClusterKeys {
  readonly prefix: string;
  readonly leader: string;
  readonly topology: string;
  readonly pause: string;
  /** The database catalog (database-catalog.ts). */
  readonly databases: string;
  readonly membersPrefix: string;
  readonly opsPrefix: string;
  readonly historyPrefix: string;
  /** Audit records (audit.ts): read only by `doltgate audit`, never part of a snapshot. */
  readonly auditPrefix: string;
  /** One key per live proxy (proxy-presence.ts), each bound to that proxy's lease. */
  readonly proxiesPrefix: string;
  /**
   * Where the keys that make up the cluster's state begin: just past `audit/`, which sorts
   * before every other key of the cluster (keyspace.test.ts holds that invariant), so one range
   * read from here to the prefix's end is a consistent snapshot without the audit records.
   */
  readonly stateStart: string;
  member(name: string): string;
  op(id: string): string;
  /** Epochs are zero-padded so that a lexical range read returns history in epoch order. */
  history(epoch: number): string;
  /** Zero-padded ms first, so that keys sort by time; `suffix` keeps two in one ms apart. */
  audit(atMs: number, suffix: string): string;
  proxy(id: string): string;
}

export function clusterKeys(cluster: string): ClusterKeys {
  if (!clusterNamePattern.test(cluster)) throw new InvalidClusterNameError(cluster);
  const prefix = `/doltgate/${cluster}/`;
  return {
    prefix,
    leader: `${prefix}leader`,
    topology: `${prefix}topology`,
    pause: `${prefix}pause`,
    databases: `${prefix}databases`,
    membersPrefix: `${prefix}members/`,
    opsPrefix: `${prefix}ops/`,
    historyPrefix: `${prefix}history/`,
    auditPrefix: `${prefix}audit/`,
    proxiesPrefix: `${prefix}proxies/`,
    // '0' is the byte after '/': the first key past every audit/... key.
    stateStart: `${prefix}audit0`,
    member: (name) => `${prefix}members/${name}`,
    op: (id) => `${prefix}ops/${id}`,
    history: (epoch) => `${prefix}history/${String(epoch).padStart(12, '0')}`,
    proxy: (id) => `${prefix}proxies/${id}`,
    audit: (atMs, suffix) => `${prefix}audit/${String(atMs).padStart(15, '0')}-${suffix}`,
  };
}

/** The member name a `members/<name>` key names, or undefined for another key. */
export function memberNameOfKey(keys: ClusterKeys, key: string): string | undefined {
  return key.startsWith(keys.membersPrefix) ? key.slice(keys.membersPrefix.length) : undefined;
}
