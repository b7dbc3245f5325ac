import { expect } from 'chai';
import { catalogAfterObservation, catalogNames, CatalogFormatError, decodeCatalog, droppedNames, encodeCatalog, type DatabaseCatalog } from '../../proto';
import { missingDatabases } from '../../agent/dolt/database-sync';

const at = '2026-12-02T00:00:00.000Z';
const app: DatabaseCatalog = { databases: { app: { addedAt: at, addedBy: 'n1', epoch: 1 } } };

describe('database catalog', () => {
  const dropped = (catalog: DatabaseCatalog | null): string[] => droppedNames(catalog);
  const rows: Array<{ name: string; catalog: DatabaseCatalog | null; present: string[]; seen?: string[]; live: string[] | null; dropped?: string[] }> = [
    { name: 'no catalog yet: every database present is added', catalog: null, present: ['app', 'orders'], live: ['app', 'orders'], dropped: [] },
    { name: 'nothing new: null (no write)', catalog: app, present: ['app'], live: null },
    { name: 'a new database is added, the old entry kept', catalog: app, present: ['app', 'orders'], live: ['app', 'orders'], dropped: [] },
    { name: 'a database this primary never held is not dropped (a promoted node lacking it is no DROP)', catalog: app, present: ['orders'], live: ['app', 'orders'], dropped: [] },
    { name: 'a database this primary held this tenure and holds no longer is dropped', catalog: app, present: [], seen: ['app'], live: [], dropped: ['app'] },
    { name: 'a dropped database created again is live again', catalog: { databases: { app: { ...app.databases.app, dropped: { at, by: 'n1', epoch: 2 } } } }, present: ['app'], live: ['app'], dropped: [] },
    { name: 'a tombstone stays while the database is absent', catalog: { databases: { app: { ...app.databases.app, dropped: { at, by: 'n1', epoch: 2 } } } }, present: [], seen: ['app'], live: null },
    { name: 'no names, no catalog: null', catalog: null, present: [], live: null },
  ];
  for (const row of rows) {
    it(row.name, () => {
      const seenThisTenure = new Set([...(row.seen ?? []), ...row.present]);
      const next = catalogAfterObservation(row.catalog, { present: row.present, seenThisTenure }, 'n2', 5, at);
      expect(next === null ? null : catalogNames(next)).to.deep.equal(row.live);
      if (next !== null) expect(dropped(next)).to.deep.equal(row.dropped);
      if (next?.databases.orders) expect(next.databases.orders).to.deep.equal({ addedAt: at, addedBy: 'n2', epoch: 5 });
      if (next?.databases.app.dropped) expect(next.databases.app.dropped).to.deep.equal({ at, by: 'n2', epoch: 5 });
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
