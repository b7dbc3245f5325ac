/**
 * Cluster mode's server configuration (agent/dolt/server-config.ts): which roles run clustered,
 * the YAML each role gets, and the global config written before a start. The Dolt behaviour each
 * row relies on is pinned in test/integration/dolt-cluster-mode-facts.test.ts.
 */

import { expect } from 'chai';
import { parse } from 'yaml';
import { clusterRoleGlobals, renderServerConfigYaml, replicationGlobalsForRole, runsClustered, type DoltServerRole, type DoltServerSettings } from '../../agent/dolt/server-config';

const cluster = {
  peers: [
    { name: 'n2', remotesapiUrl: 'http://127.0.0.1:50052' },
    { name: 'n3', remotesapiUrl: 'http://127.0.0.1:50053/' },
  ],
  remotesapi: { host: '127.0.0.1', port: 50051 },
  epoch: 7,
};

function settings(role: DoltServerRole, clustered: boolean): DoltServerSettings {
  return { dataDir: '/d', host: '127.0.0.1', port: 3306, role, remoteName: 'origin', privatePort: 40000, cluster: clustered ? cluster : null };
}

describe('server config: cluster mode', () => {
  const rows: Array<{ role: DoltServerRole; clustered: boolean; readOnly: boolean; port: number }> = [
    { role: 'primary', clustered: true, readOnly: false, port: 3306 },
    { role: 'replica', clustered: true, readOnly: false, port: 3306 },
    { role: 'standby', clustered: false, readOnly: false, port: 40000 },
    { role: 'fenced', clustered: false, readOnly: true, port: 3306 },
  ];
  for (const row of rows) {
    it(`${row.role}: ${row.clustered ? 'clustered' : 'without cluster:'}, read_only ${row.readOnly}, port ${row.port}`, () => {
      const s = settings(row.role, true);
      expect(runsClustered(s, row.role)).to.equal(row.clustered);
      const yaml = parse(renderServerConfigYaml(s)) as Record<string, any>;
      expect(yaml.behavior.read_only).to.equal(row.readOnly);
      expect(yaml.listener.port).to.equal(row.port);
      expect(yaml.cluster !== undefined).to.equal(row.clustered);
      const globals = clusterRoleGlobals(s, row.role);
      if (row.clustered) {
        // Every clustered start is a standby: a stale primary never comes back primary.
        expect(globals).to.deep.equal({ 'sqlserver.cluster.dolt_cluster_role': 'standby', 'sqlserver.cluster.dolt_cluster_role_epoch': '7' });
      } else {
        expect(globals).to.deep.equal({});
      }
      // No remote replication in cluster mode, whatever the role.
      expect(Object.values(replicationGlobalsForRole(row.role, 'origin', null, true)).every((value) => value === null)).to.equal(true);
    });
  }

  it('the cluster section names every peer with a {database} URL, bootstraps a standby at epoch 0, and listens where configured', () => {
    const yaml = parse(renderServerConfigYaml(settings('replica', true))) as Record<string, any>;
    expect(yaml.cluster).to.deep.equal({
      standby_remotes: [
        { name: 'n2', remote_url_template: 'http://127.0.0.1:50052/{database}' },
        { name: 'n3', remote_url_template: 'http://127.0.0.1:50053/{database}' },
      ],
      bootstrap_role: 'standby',
      bootstrap_epoch: 0,
      remotesapi: { address: '127.0.0.1', port: 50051 },
    });
  });

  it('remote mode is unchanged: no cluster section, no cluster role written, the primary pushes', () => {
    for (const role of ['primary', 'replica', 'standby', 'fenced'] as const) {
      const s = settings(role, false);
      expect(runsClustered(s, role)).to.equal(false);
      expect((parse(renderServerConfigYaml(s)) as Record<string, unknown>).cluster).to.equal(undefined);
      expect(clusterRoleGlobals(s, role)).to.deep.equal({});
    }
    expect(replicationGlobalsForRole('primary', 'origin')['sqlserver.global.dolt_replicate_to_remote']).to.equal('origin');
    expect((parse(renderServerConfigYaml(settings('replica', false))) as Record<string, any>).behavior.read_only).to.equal(true);
  });
});
