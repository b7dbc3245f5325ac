import { expect } from 'chai';
import { catalogNames, catalogWith, CatalogFormatError, decodeCatalog, encodeCatalog, type DatabaseCatalog } from '../../proto';
import { missingDatabases } from '../../agent/dolt/database-sync';

const at = '2026-12-02T00:00:00.000Z';
const app: DatabaseCatalog = { databases: { app: { addedAt: at, addedBy: 'n1', epoch: 1 } } };

describe('database catalog', () => {
  const rows: Array<{ name: string; catalog: DatabaseCatalog | null; names: string[]; expected: string[] | null }> = [
    { name: 'no catalog yet: every name is added', catalog: null, names: ['app', 'orders'], expected: ['app', 'orders'] },
    { name: 'nothing new: null (no write)', catalog: app, names: ['app'], expected: null },
    { name: 'a new database is added, the old entry kept', catalog: app, names: ['app', 'orders'], expected: ['app', 'orders'] },
    { name: 'a database the primary no longer lists is kept (the catalog only grows)', catalog: app, names: ['orders'], expected: ['app', 'orders'] },
    { name: 'no names, no catalog: null', catalog: null, names: [], expected: null },
  ];
  for (const row of rows) {
    it(row.name, () => {
      const next = catalogWith(row.catalog, row.names, 'n2', 5, at);
      expect(next === null ? null : catalogNames(next)).to.deep.equal(row.expected);
      if (next !== null && row.catalog !== null) expect(next.databases.app).to.deep.equal(row.catalog.databases.app);
      if (next?.databases.orders) expect(next.databases.orders).to.deep.equal({ addedAt: at, addedBy: 'n2', epoch: 5 });
    });
  }

  it('round-trips through its encoding, and rejects a malformed value', () => {
    expect(decodeCatalog(encodeCatalog(app))).to.deep.equal(app);
    expect(() => decodeCatalog('{"databases": []}')).to.throw(CatalogFormatError);
    expect(() => decodeCatalog('nope')).to.throw(CatalogFormatError, /not JSON/);
  });

  const missing: Array<[string[], string[], string[]]> = [
    [['app', 'orders'], ['app'], ['orders']],
    [['app'], ['app', 'local_only'], []],
    [['b', 'a'], [], ['a', 'b']],
  ];
  for (const [catalog, local, expected] of missing) {
    it(`missingDatabases(${catalog.join(',')} | local ${local.join(',') || '-'}) = ${expected.join(',') || 'none'}`, () => {
      expect(missingDatabases(catalog, local)).to.deep.equal(expected);
    });
  }
});
