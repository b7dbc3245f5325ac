/**
 * parseProxyConfig: a minimal config gets every default; one table of bad configs, each row named
 * after the field the error must name; hashProxyPassword makes hashes the auth code accepts.
 */

import { expect } from 'chai';
import { hashProxyPassword, parseProxyConfig, ProxyConfigError, describeProxyConfig } from '../../proxy/config';
import { cachingSha2PasswordHash, nativePasswordHash, parseNativePasswordHash } from '../../proxy/protocol';

const user = { name: 'app', ...hashProxyPassword('secret'), backend_user: 'root', backend_password: 'dolt' };
const staticTopology = { primary: 'n1', nodes: { n1: { host: '127.0.0.1', port: 3306 }, n2: { host: '127.0.0.1', port: 3307, weight: 2 } } };

function minimal(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { users: [user], static_topology: staticTopology, ...extra };
}

describe('proxy config', () => {
  it('a minimal config gets the documented defaults', () => {
    const c = parseProxyConfig(minimal());
    expect(c.listen).to.deep.equal({ host: '127.0.0.1', port: 3307 });
    expect(c.maxClientConnections).to.equal(1000);
    expect(c.maxAllowedPacket).to.equal(64 * 1024 * 1024);
    expect(c.handshakeTimeoutMs).to.equal(10_000);
    expect(c.queryTimeoutMs).to.equal(0);
    expect(c.outcomeTokens).to.equal(true);
    expect(c.defaultAuthPlugin).to.equal('caching_sha2_password');
    expect(c.hold).to.deep.equal({ timeoutMs: 10_000, maxHeld: 1000, maxEpisodeMs: 30_000 });
    expect(c.routing).to.deep.equal({ strategy: 'round-robin', readYourWritesMs: null, readOnlyProcedures: [], writeFunctions: [] });
    expect(c.etcd).to.equal(null);
    expect(c.metrics).to.equal(null);
    expect(c.tls).to.equal(null);
  });

  it('a static topology becomes a stable epoch-1 topology with the other nodes as replicas', () => {
    const t = parseProxyConfig(minimal()).staticTopology;
    expect(t).to.deep.include({ epoch: 1, state: 'stable', primary: 'n1' });
    expect(t?.nodes.n1).to.deep.equal({ sql: { host: '127.0.0.1', port: 3306 }, role: 'primary' });
    expect(t?.nodes.n2).to.deep.equal({ sql: { host: '127.0.0.1', port: 3307 }, role: 'replica', weight: 2 });
  });

  it('users keep hashes only; the backend password may come from the environment', () => {
    const c = parseProxyConfig(minimal({ users: [{ name: 'app', ...hashProxyPassword('secret'), backend_password_env: 'DOLT_PW' }] }), { env: { DOLT_PW: 'from-env' } });
    const u = c.users[0];
    expect(u.nativeHash?.equals(nativePasswordHash('secret'))).to.equal(true);
    expect(u.cachingSha2Hash?.equals(cachingSha2PasswordHash('secret'))).to.equal(true);
    expect(u.backendUser).to.equal('app');
    expect(u.backendPassword).to.equal('from-env');
    expect(JSON.stringify(describeProxyConfig(c))).to.not.match(/from-env|[0-9A-F]{40}/i);
  });

  it('hashProxyPassword gives MySQL\'s * form and 64 hex digits', () => {
    const h = hashProxyPassword('secret');
    expect(h.native_password_hash).to.match(/^\*[0-9A-F]{40}$/);
    expect(parseNativePasswordHash(h.native_password_hash).equals(nativePasswordHash('secret'))).to.equal(true);
    expect(h.caching_sha2_hash).to.match(/^[0-9a-f]{64}$/);
    expect(hashProxyPassword('')).to.deep.equal({ native_password_hash: '', caching_sha2_hash: '' });
  });

  it('etcd endpoints instead of a static topology', () => {
    const c = parseProxyConfig({ users: [user], cluster: 'prod', etcd: { endpoints: ['http://127.0.0.1:2379'] } });
    expect(c.etcd).to.deep.equal({ endpoints: ['http://127.0.0.1:2379'], tls: null, auth: null });
    expect(c.cluster).to.equal('prod');
    expect(c.staticTopology).to.equal(null);
  });

  it('etcd TLS and user/password: files resolve against the config folder, the password from the environment', () => {
    const c = parseProxyConfig(
      { users: [user], etcd: { endpoints: ['https://10.0.0.1:2379'], ca_file: 'ca.pem', cert_file: '/abs/c.pem', key_file: 'k.pem', user: 'proxy', password_env: 'ETCD_PW' } },
      { baseDir: '/etc/doltgate', env: { ETCD_PW: 's3cret' } },
    );
    expect(c.etcd).to.deep.equal({
      endpoints: ['https://10.0.0.1:2379'],
      tls: { caFile: '/etc/doltgate/ca.pem', certFile: '/abs/c.pem', keyFile: '/etc/doltgate/k.pem' },
      auth: { user: 'proxy', password: 's3cret' },
    });
  });

  const etcdErrors: Array<{ name: string; etcd: Record<string, unknown>; message: RegExp }> = [
    { name: 'a CA with http:// endpoints', etcd: { endpoints: ['http://h:2379'], ca_file: 'ca.pem' }, message: /etcd\.endpoints must all be https:\/\/ URLs when ca_file is set/ },
    { name: 'https:// without a CA', etcd: { endpoints: ['https://h:2379'] }, message: /etcd\.ca_file is needed for https:\/\/ endpoints/ },
    { name: 'a certificate without its key', etcd: { endpoints: ['https://h:2379'], ca_file: 'ca.pem', cert_file: 'c.pem' }, message: /cert_file and key_file go together/ },
    { name: 'a user without a password', etcd: { endpoints: ['http://h:2379'], user: 'proxy' }, message: /etcd\.user and password/ },
    { name: 'password_env naming an unset variable', etcd: { endpoints: ['http://h:2379'], user: 'proxy', password_env: 'NOPE_NOT_SET' }, message: /names NOPE_NOT_SET, which is not set/ },
  ];
  for (const row of etcdErrors) {
    it(`etcd: ${row.name} is refused`, () => {
      expect(() => parseProxyConfig({ users: [user], etcd: row.etcd }, { env: {} })).to.throw(row.message);
    });
  }

  it('relative TLS paths resolve against the config file folder', () => {
    const c = parseProxyConfig(minimal({ tls: { cert: 'c.pem', key: '/abs/k.pem', required: true } }), { baseDir: '/etc/doltgate' });
    expect(c.tls).to.deep.equal({ certFile: '/etc/doltgate/c.pem', keyFile: '/abs/k.pem', required: true });
  });

  const bad: Array<{ field: string; config: unknown; detail?: RegExp }> = [
    { field: '(document)', config: 'just a string' },
    { field: 'users', config: { static_topology: staticTopology } },
    { field: 'users', config: minimal({ users: [] }) },
    { field: 'users[0].name', config: minimal({ users: [{ ...user, name: '' }] }) },
    { field: 'users[1].name', config: minimal({ users: [user, user] }), detail: /repeats/ },
    { field: 'users[0].native_password_hash', config: minimal({ users: [{ ...user, native_password_hash: 'plaintext' }] }) },
    { field: 'users[0].caching_sha2_hash', config: minimal({ users: [{ ...user, caching_sha2_hash: 'abc' }] }) },
    { field: 'users[0].password', config: minimal({ users: [{ ...user, password: 'secret' }] }), detail: /hashes/ },
    { field: 'users[0]', config: minimal({ users: [{ name: 'x', backend_user: 'root' }] }), detail: /needs native_password_hash or caching_sha2_hash/ },
    { field: 'users[0]', config: minimal({ users: [{ ...user, backend_password_env: 'X' }] }), detail: /both/ },
    { field: 'users[0].backend_password_env', config: minimal({ users: [{ name: 'a', ...hashProxyPassword('p'), backend_password_env: 'NOT_SET_ANYWHERE' }] }) },
    { field: 'listen.port', config: minimal({ listen: { port: 70000 } }) },
    { field: 'listen.hots', config: minimal({ listen: { hots: 'x' } }), detail: /not a known setting/ },
    { field: 'max_client_connections', config: minimal({ max_client_connections: 0 }) },
    { field: 'max_allowed_packet', config: minimal({ max_allowed_packet: 2 ** 31 }) },
    { field: 'default_auth_plugin', config: minimal({ default_auth_plugin: 'sha256_password' }) },
    { field: 'etcd', config: { users: [user] }, detail: /exactly one/ },
    { field: 'etcd', config: minimal({ etcd: { endpoints: ['http://x:1'] } }), detail: /exactly one/ },
    { field: 'etcd.endpoints[0]', config: { users: [user], etcd: { endpoints: ['localhost:2379'] } } },
    { field: 'cluster', config: minimal({ cluster: 'Bad/Name' }) },
    { field: 'static_topology.primary', config: minimal({ static_topology: { primary: 'n9', nodes: staticTopology.nodes } }) },
    { field: 'static_topology.nodes.n1.port', config: minimal({ static_topology: { primary: 'n1', nodes: { n1: { host: 'h' } } } }) },
    { field: 'hold.timeout_ms', config: minimal({ hold: { timeout_ms: 0 } }) },
    { field: 'outcome_tokens', config: minimal({ outcome_tokens: 'yes' }) },
    { field: 'hold.max_episode_ms', config: minimal({ hold: { timeout_ms: 5000, max_episode_ms: 4999 } }), detail: /from 5000/ },
    { field: 'routing.strategy', config: minimal({ routing: { strategy: 'random' } }) },
    { field: 'routing.read_only_procedures', config: minimal({ routing: { read_only_procedures: 'p' } }) },
    { field: 'tls.key', config: minimal({ tls: { cert: 'c.pem' } }) },
    { field: 'metrics.port', config: minimal({ metrics: { port: -1 } }) },
    { field: 'pool.idle_timeout_ms', config: minimal({ pool: { idle_timeout_ms: 5 } }) },
    { field: 'surprise', config: minimal({ surprise: 1 }), detail: /not a known setting/ },
  ];
  const seen = new Map<string, number>();
  for (const row of bad) {
    const n = (seen.get(row.field) ?? 0) + 1;
    seen.set(row.field, n);
    it(`names ${row.field} in the error${n > 1 ? ` (case ${n})` : ''}`, () => {
      let error: unknown;
      try {
        parseProxyConfig(row.config, { file: 'proxy.yaml', env: {} });
      } catch (e) {
        error = e;
      }
      expect(error).to.be.instanceOf(ProxyConfigError);
      const e = error as ProxyConfigError;
      expect(e.field).to.equal(row.field);
      expect(e.message.startsWith(`proxy.yaml: ${row.field} `)).to.equal(true, e.message);
      if (row.detail) expect(e.message).to.match(row.detail);
    });
  }
});
