/**
 * LOAD DATA LOCAL INFILE through the proxy to a real Dolt started with local_infile (agent config
 * dolt.local_infile): relayed for a proxy user with allow_local_infile whose client enabled local
 * files — the rows land on the primary, also for a file of many packets — and refused (3948)
 * for anyone else, without the client ever being asked for a file. The scripted-server cases
 * (a server asking for another file, losses mid-file) are in
 * test/unit/proxy-session-fake-backend.test.ts.
 */

import { expect } from 'chai';
import { Readable } from 'node:stream';
import mysql, { type Connection } from 'mysql2/promise';
import { silentLogger } from '../../common/logger';
import { hashProxyPassword, parseProxyConfig } from '../../proxy/config';
import { startProxy, type RunningProxy } from '../../proxy/proxy-main';
import { TestDoltCluster } from '../bed/dolt-cluster';

describe('LOAD DATA LOCAL INFILE through the proxy (real Dolt with local_infile)', function () {
  this.timeout(90_000);
  let cluster: TestDoltCluster;
  let proxy: RunningProxy;
  const clients: Connection[] = [];

  before(async () => {
    cluster = await TestDoltCluster.start({ nodes: 2, databases: ['app'], localInfile: true });
    await cluster.query(cluster.primary, 'CREATE TABLE t (id INT PRIMARY KEY, v TEXT)');
    proxy = await startProxy(
      parseProxyConfig({
        listen: { host: '127.0.0.1', port: 0 },
        users: [
          { name: 'app', ...hashProxyPassword('secret'), backend_user: 'root', backend_password: '' },
          { name: 'loader', ...hashProxyPassword('secret'), backend_user: 'root', backend_password: '', allow_local_infile: true },
        ],
        static_topology: { primary: 'n1', nodes: Object.fromEntries(cluster.nodes.map((n) => [n.name, { host: '127.0.0.1', port: n.port }])) },
      }),
      silentLogger,
    );
  });
  after(async () => {
    for (const c of clients) c.destroy();
    await proxy?.stop();
    await cluster?.stop();
  });

  async function connect(user: string, content: Buffer): Promise<{ c: Connection; asked: string[] }> {
    const asked: string[] = [];
    const c = await mysql.createConnection({
      host: '127.0.0.1',
      port: proxy.server.address.port,
      user,
      password: 'secret',
      database: 'app',
      infileStreamFactory: (path: string) => {
        asked.push(path);
        // In 64 KiB chunks: mysql2 sends each as a packet of its own.
        const chunks: Buffer[] = [];
        for (let at = 0; at < content.length; at += 65_536) chunks.push(content.subarray(at, at + 65_536));
        return Readable.from(chunks);
      },
    });
    clients.push(c);
    return { c, asked };
  }

  const countOnPrimary = async (): Promise<number> => Number((await cluster.query<{ n: number }>(cluster.primary, 'SELECT COUNT(*) AS n FROM t'))[0]?.n);

  it('a user without allow_local_infile is refused (3948) and never asked for its file', async () => {
    const { c, asked } = await connect('app', Buffer.from('1,a\n'));
    const error = await c.query("LOAD DATA LOCAL INFILE 'rows.csv' INTO TABLE t FIELDS TERMINATED BY ','").then(
      () => null,
      (e: { errno: number; message: string }) => e,
    );
    expect(error?.errno).to.equal(3948);
    expect(error?.message).to.contain('allow_local_infile');
    expect(asked).to.deep.equal([]);
    expect(await countOnPrimary()).to.equal(0);
  });

  it("an allowed user's rows land on the primary, from the one file the statement named", async () => {
    const { c, asked } = await connect('loader', Buffer.from('1,a\n2,b\n3,c\n'));
    const [result] = await c.query("LOAD DATA LOCAL INFILE 'rows.csv' INTO TABLE t FIELDS TERMINATED BY ','");
    expect(result).to.deep.include({ affectedRows: 3 });
    expect(asked).to.deep.equal(['rows.csv']);
    expect(await countOnPrimary()).to.equal(3);
    const [after] = await c.query('SELECT COUNT(*) AS n FROM t');
    expect(Number((after as Array<{ n: number }>)[0]?.n)).to.equal(3);
  });

  it('a file of many packets (about 3 MiB in 64 KiB packets, 100,000 rows) arrives whole', async () => {
    await cluster.query(cluster.primary, 'DELETE FROM t');
    const big = Buffer.from(Array.from({ length: 100_000 }, (_, i) => `${i},${'x'.repeat(30)}\n`).join(''));
    const { c } = await connect('loader', big);
    const [result] = await c.query("LOAD DATA LOCAL INFILE 'big.csv' INTO TABLE t FIELDS TERMINATED BY ','");
    expect(result).to.deep.include({ affectedRows: 100_000 });
    expect(await countOnPrimary()).to.equal(100_000);
  });
});
