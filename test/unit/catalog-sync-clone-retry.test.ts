/**
 * A replica whose Dolt keeps failing to clone a database the catalog lists (a clone that read the
 * file remote mid-push poisons Dolt's later clones until it restarts; seen in CI): after
 * CLONE_FAILURES_BEFORE_RESTART failed cycles the catalog sync restarts the read-only server
 * without the half-made databases, and a success resets the count. The replica's Dolt is a scripted
 * MySQL server (test/bed/fake-mysql-server.ts), its LocalDolt a recorder.
 */

import { expect } from 'chai';
import { silentLogger } from '../../common/logger';
import { CLONE_FAILURES_BEFORE_RESTART, DatabaseCatalogSync } from '../../agent/database-catalog-sync';
import type { LocalDolt } from '../../agent/dolt/local-dolt';
import type { DataInspection } from '../../agent/dolt/inspector';
import type { ClusterStore } from '../../agent/store/cluster-store';
import type { ClusterSnapshot } from '../../agent/store/cluster-store';
import { FakeMysqlServer } from '../bed/fake-mysql-server';

const at = '2026-12-04T00:00:00.000Z';

function inspection(): DataInspection {
  // A fresh object each cycle: the sync acts once per inspection.
  return { heads: { app: { main: 'h' } }, remoteHeads: {}, notOnRemote: {}, commitsNotOnRemote: 0, commitsBehindRemote: 0, databasesWithoutRemote: [] };
}

const snapshot = {
  leader: { name: 'n1', lease: '1' },
  topology: { value: { primary: 'n1' } },
  databases: { value: { databases: { app: { addedAt: at, addedBy: 'n1', epoch: 1 }, orders: { addedAt: at, addedBy: 'n1', epoch: 1 } } }, modRevision: '1' },
} as unknown as ClusterSnapshot;

describe('catalog sync on a replica: a clone Dolt keeps refusing', () => {
  let dolt: FakeMysqlServer;
  let failing = true;
  const removed: string[][] = [];

  before(async () => {
    dolt = await new FakeMysqlServer((sql) => {
      if (sql.includes('`orders`.dolt_branches') && failing) return { err: { errno: 1049, sqlState: '42000', message: 'database not found: orders' } };
      if (/^SHOW DATABASES/i.test(sql)) return { rows: { columns: ['Database'], values: [['app'], ...(failing ? [] : [['orders']])] } };
      return undefined;
    }).start();
  });
  after(() => dolt.stop());

  function sync(): DatabaseCatalogSync {
    const local = {
      mode: 'managed',
      runningRole: 'replica',
      endpoint: { host: '127.0.0.1', port: dolt.port, user: 'root', password: '' },
      removeDatabases: async (names: readonly string[]) => {
        removed.push([...names]);
      },
    } as unknown as LocalDolt;
    return new DatabaseCatalogSync({ name: 'n2', remoteUrlTemplate: 'file:///r/{database}', sqlTimeoutMs: 2_000 }, {} as ClusterStore, local, silentLogger);
  }

  it(`restarts the server without them after ${CLONE_FAILURES_BEFORE_RESTART} failed cycles, not before, and counts again from there`, async () => {
    const s = sync();
    for (let cycle = 1; cycle < CLONE_FAILURES_BEFORE_RESTART; cycle++) {
      expect(await s.sync(snapshot, { inspection: inspection(), role: 'replica' }, 1), `cycle ${cycle}`).to.equal(false);
    }
    expect(removed).to.deep.equal([]);
    expect(await s.sync(snapshot, { inspection: inspection(), role: 'replica' }, 1)).to.equal(true);
    expect(removed).to.deep.equal([['orders']]);
    expect(await s.sync(snapshot, { inspection: inspection(), role: 'replica' }, 1)).to.equal(false);
    expect(removed, 'the count starts over').to.have.length(1);
  });

  it('a clone that succeeds resets the count', async () => {
    removed.length = 0;
    const s = sync();
    for (let cycle = 1; cycle < CLONE_FAILURES_BEFORE_RESTART; cycle++) await s.sync(snapshot, { inspection: inspection(), role: 'replica' }, 1);
    failing = false;
    await s.sync(snapshot, { inspection: inspection(), role: 'replica' }, 1);
    failing = true;
    for (let cycle = 1; cycle < CLONE_FAILURES_BEFORE_RESTART; cycle++) await s.sync(snapshot, { inspection: inspection(), role: 'replica' }, 1);
    expect(removed).to.deep.equal([]);
  });
});
