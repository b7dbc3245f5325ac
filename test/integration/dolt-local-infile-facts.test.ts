/**
 * Learning tests for LOAD DATA LOCAL INFILE on the real Dolt binary, which the proxy's relay
 * (proxy/server/local-infile.ts) rests on:
 *  - Dolt refuses it (1105, naming local_infile) unless local_infile = 1, and that can be set at
 *    start-up in the server config's system_variables (agent config dolt.local_infile);
 *  - its LOCAL INFILE request names the file exactly as the statement's string literal wrote it;
 *  - it asks for the file even from a client that did not enable local files (no
 *    CLIENT_LOCAL_FILES in its handshake response), so keeping a server from reading a client's
 *    files unasked is the proxy's job, not Dolt's;
 *  - a client that answers with an empty packet (no file) gets OK with 0 rows.
 */

import { expect } from 'chai';
import { Readable } from 'node:stream';
import mysql from 'mysql2/promise';
import { TestDoltCluster } from '../bed/dolt-cluster';
import { frame, RawClient } from '../bed/raw-mysql-client';

describe('Dolt LOAD DATA LOCAL INFILE facts (real dolt sql-server)', function () {
  this.timeout(60_000);
  let plain: TestDoltCluster;
  let allowing: TestDoltCluster;

  before(async () => {
    [plain, allowing] = await Promise.all([TestDoltCluster.start({ nodes: 1, databases: ['app'] }), TestDoltCluster.start({ nodes: 1, databases: ['app'], localInfile: true })]);
    for (const c of [plain, allowing]) await c.query(c.primary, 'CREATE TABLE t (id INT PRIMARY KEY, v TEXT)');
  });
  after(async () => {
    await plain?.stop();
    await allowing?.stop();
  });

  async function load(cluster: TestDoltCluster, sql: string): Promise<{ asked: string[]; result: unknown }> {
    const asked: string[] = [];
    const c = await mysql.createConnection({
      host: '127.0.0.1',
      port: cluster.primary.port,
      user: 'root',
      database: 'app',
      infileStreamFactory: (path: string) => {
        asked.push(path);
        return Readable.from([Buffer.from('1,a\n2,b\n')]);
      },
    });
    try {
      const result = await c.query(sql).then(
        ([r]) => r,
        (e: { errno: number; message: string }) => ({ errno: e.errno, message: e.message }),
      );
      return { asked, result };
    } finally {
      c.destroy();
    }
  }

  it('local_infile is 0 by default and Dolt then refuses LOAD DATA LOCAL with 1105, never asking for the file', async () => {
    const [v] = await plain.query<{ li: number }>(plain.primary, 'SELECT @@global.local_infile AS li');
    expect(Number(v?.li)).to.equal(0);
    const { asked, result } = await load(plain, "LOAD DATA LOCAL INFILE 'rows.csv' INTO TABLE t FIELDS TERMINATED BY ','");
    expect(result).to.deep.include({ errno: 1105 });
    expect((result as { message: string }).message).to.contain('local_infile');
    expect(asked).to.deep.equal([]);
  });

  it("local_infile = 1 from the server config's system_variables: Dolt asks for the file by the statement's exact name and loads it", async () => {
    const [v] = await allowing.query<{ li: number }>(allowing.primary, 'SELECT @@global.local_infile AS li');
    expect(Number(v?.li)).to.equal(1);
    const { asked, result } = await load(allowing, "LOAD DATA LOCAL INFILE 'some dir/rows.csv' INTO TABLE t FIELDS TERMINATED BY ','");
    expect(asked).to.deep.equal(['some dir/rows.csv']);
    expect(result).to.deep.include({ affectedRows: 2 });
    await allowing.query(allowing.primary, 'DELETE FROM t');
  });

  it('Dolt asks for the file even from a client that did not enable local files; an empty packet back loads nothing', async () => {
    const raw = await RawClient.connect(allowing.primary.port);
    try {
      await raw.login('root', '', 'app'); // its capabilities have no CLIENT_LOCAL_FILES
      raw.command(0x03, "LOAD DATA LOCAL INFILE '/etc/hostname' INTO TABLE t FIELDS TERMINATED BY ','");
      const request = (await raw.next()) as Buffer;
      expect(request[0], 'a LOCAL INFILE request').to.equal(0xfb);
      expect(request.subarray(1).toString('utf8')).to.equal('/etc/hostname');
      raw.send(frame(2, []));
      const answer = (await raw.next()) as Buffer;
      expect(answer[0], 'OK after an empty file').to.equal(0x00);
    } finally {
      raw.socket.destroy();
    }
    const [n] = await allowing.query<{ n: number }>(allowing.primary, 'SELECT COUNT(*) AS n FROM t');
    expect(Number(n?.n)).to.equal(0);
  });
});
