/**
 * The application user of the deploy files, through the proxy (finding 4 of the hostile-input
 * issue: an app user with ALL but SUPER created a user and granted it SUPER, changed the agent
 * user's password, turned push-on-write off and read the agent's config file). Real Dolt with
 * secure_file_priv as the agent sets it, the app's Dolt user with data rights only
 * (APP_USER_PRIVILEGES), and the proxy in front: every one of those actions is refused — by Dolt
 * where Dolt checks it, by the proxy where Dolt does not (dolt-privilege-facts.test.ts) — and
 * afterwards the agent user still logs in and nothing the agents own has changed.
 */

import { expect } from 'chai';
import mysql, { type RowDataPacket } from 'mysql2/promise';
import { silentLogger } from '../../common/logger';
import { hashProxyPassword, parseProxyConfig } from '../../proxy/config';
import { startProxy, type RunningProxy } from '../../proxy/proxy-main';
import { createDeployUsers } from '../bed/app-user-checks';
import { registerCleanup } from '../bed/cleanup';
import { TestDoltCluster } from '../bed/dolt-cluster';

describe('the application user cannot reach what the agents own (real Dolt, through the proxy)', function () {
  this.timeout(120_000);
  let cluster: TestDoltCluster;
  let admin: mysql.Connection;
  let proxy: RunningProxy;
  let app: mysql.Connection;

  before(async () => {
    cluster = await TestDoltCluster.start({ nodes: 1, secureFiles: true });
    admin = await cluster.connect(cluster.primary);
    await admin.query('CREATE TABLE t (id INT PRIMARY KEY, v TEXT)');
    await createDeployUsers(admin, 'agent-pw', 'app-pw');
    proxy = await startProxy(
      parseProxyConfig({
        listen: { host: '127.0.0.1', port: 0 },
        users: [{ name: 'app', ...hashProxyPassword('secret'), backend_user: 'app', backend_password: 'app-pw' }],
        static_topology: { primary: 'n1', nodes: { n1: { host: '127.0.0.1', port: cluster.primary.port } } },
      }),
      silentLogger,
    );
    registerCleanup(() => proxy.stop());
    app = await mysql.createConnection({ host: '127.0.0.1', port: proxy.server.address.port, user: 'app', password: 'secret', database: 'db' });
    registerCleanup(() => app.destroy());
  });
  after(async () => {
    await proxy?.stop();
    await cluster?.stop();
  });

  const refused = (sql: string): Promise<{ errno?: number; message: string } | null> => app.query(sql).then(() => null, (e: { errno?: number; message: string }) => e);

  it('data work goes through', async () => {
    await app.query("INSERT INTO t VALUES (1, 'one')");
    const [rows] = await app.query<RowDataPacket[]>('SELECT v FROM t WHERE id = 1');
    expect(rows[0].v).to.equal('one');
  });

  const refusals: Array<[string, RegExp]> = [
    ["CREATE USER 'evil'@'%' IDENTIFIED BY 'x'", /refused through the proxy/],
    ["GRANT SUPER ON *.* TO 'app'@'%'", /refused through the proxy/],
    ["GRANT ALL ON *.* TO 'app'@'%' WITH GRANT OPTION", /refused through the proxy/],
    ["ALTER USER 'doltgate'@'localhost' IDENTIFIED BY 'stolen'", /refused through the proxy/],
    ["REVOKE ALL ON *.* FROM 'doltgate'@'localhost'", /refused through the proxy/],
    ["SET PERSIST dolt_replicate_to_remote = ''", /SET GLOBAL \/ SET PERSIST is refused/],
    ["SET GLOBAL dolt_replicate_to_remote = ''", /SET GLOBAL \/ SET PERSIST is refused/],
    ['SET @@global.read_only = 1', /SET GLOBAL \/ SET PERSIST is refused/],
    ['SET PERSIST max_connections = 5', /SET GLOBAL \/ SET PERSIST is refused/],
    ["PREPARE s FROM 'GRANT SUPER ON *.* TO app'", /refused through the proxy/],
    ['PREPARE s FROM @hidden', /FROM a user variable is refused/],
    ["CREATE PROCEDURE escalate() BEGIN ALTER USER 'doltgate'@'localhost' IDENTIFIED BY 'stolen'; END", /whose body holds an account statement/],
    ["CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW SET @@global.read_only = 1", /whose body holds/],
    ["SELECT 1 INTO OUTFILE '/tmp/doltgate-app-outfile.txt'", /secure-file-priv/],
    ["LOAD DATA INFILE '/etc/hostname' INTO TABLE t", /command denied|secure-file-priv/],
    ["CALL dolt_remote('add', 'evil', 'file:///tmp/evil-remote')", /command denied/],
    ["CALL dolt_push('origin', 'main')", /command denied/],
    ["CALL dolt_backup('add', 'b', 'file:///tmp/evil-backup')", /command denied/],
  ];
  for (const [sql, message] of refusals) {
    it(`refused: ${sql}`, async () => {
      const error = await refused(sql);
      expect(error, 'must be refused').to.not.equal(null);
      expect(error?.message).to.match(message);
    });
  }

  it("LOAD_FILE of the host's files reads nothing", async () => {
    const [rows] = await app.query<RowDataPacket[]>("SELECT LOAD_FILE('/etc/hostname') AS f, LOAD_FILE('/etc/passwd') AS g");
    expect(rows[0].f).to.equal(null);
    expect(rows[0].g).to.equal(null);
  });

  it('afterwards the agent user logs in, the app holds no SUPER, and replication and read-only are as the agent set them', async () => {
    const agent = await mysql.createConnection({ host: '127.0.0.1', port: cluster.primary.port, user: 'doltgate', password: 'agent-pw' });
    agent.destroy();
    const [grants] = await admin.query<RowDataPacket[]>("SHOW GRANTS FOR 'app'@'%'");
    const text = grants.map((r) => String(Object.values(r)[0])).join('\n');
    expect(text).to.not.match(/SUPER|GRANT OPTION|FILE|CREATE USER/);
    const [[vars]] = await admin.query<RowDataPacket[]>('SELECT @@GLOBAL.dolt_replicate_to_remote AS remote, @@GLOBAL.read_only AS ro, @@GLOBAL.max_connections AS mc');
    expect(vars.remote).to.equal('origin');
    expect(Number(vars.ro)).to.equal(0);
    expect(Number(vars.mc)).to.not.equal(5);
    const [procedures] = await admin.query<RowDataPacket[]>("SELECT ROUTINE_NAME FROM information_schema.routines WHERE ROUTINE_NAME = 'escalate'");
    expect(procedures).to.deep.equal([]);
  });
});
