import { expect } from 'chai';
import { AgentConfigError, parseAgentConfig } from '../../agent/agent-config';

const base = 'name: n1\netcd: {endpoints: ["http://127.0.0.1:2379"]}\n';
const cluster = 'cluster: {remotesapi: "127.0.0.1:50051", peers: {n3: "http://127.0.0.1:50053", n2: "http://127.0.0.1:50052/"}}';

describe('agent config: dolt.replication and dolt.cluster', () => {
  it('defaults to remote replication with no cluster section', () => {
    const config = parseAgentConfig(base);
    expect(config.dolt.replication).to.equal('remote');
    expect(config.dolt.cluster).to.equal(null);
  });

  it('cluster: the remotesapi listener, peers sorted by name without a trailing slash, ack writes off by default', () => {
    const config = parseAgentConfig(`${base}dolt: {replication: cluster, ${cluster}}`);
    expect(config.dolt.replication).to.equal('cluster');
    expect(config.dolt.cluster).to.deep.equal({
      remotesapi: { host: '127.0.0.1', port: 50051 },
      peers: [
        { name: 'n2', remotesapiUrl: 'http://127.0.0.1:50052' },
        { name: 'n3', remotesapiUrl: 'http://127.0.0.1:50053' },
      ],
      ackWritesTimeoutSecs: 0,
    });
  });

  const refused: Array<{ yaml: string; error: RegExp }> = [
    { yaml: 'dolt: {replication: merge}', error: /dolt\.replication must be remote or cluster/ },
    { yaml: 'dolt: {replication: cluster}', error: /dolt\.cluster is required/ },
    { yaml: 'dolt: {replication: cluster, cluster: {peers: {n2: "http://h:1"}}}', error: /dolt\.cluster\.remotesapi is required/ },
    { yaml: 'dolt: {replication: cluster, cluster: {remotesapi: "127.0.0.1:1"}}', error: /dolt\.cluster\.peers must map/ },
    { yaml: 'dolt: {replication: cluster, cluster: {remotesapi: "127.0.0.1:1", peers: {}}}', error: /dolt\.cluster\.peers must map/ },
    { yaml: 'dolt: {replication: cluster, cluster: {remotesapi: "127.0.0.1:1", peers: {n1: "http://h:1"}}}', error: /peers\.n1 names this node/ },
    { yaml: 'dolt: {replication: cluster, cluster: {remotesapi: "127.0.0.1:1", peers: {"N 2": "http://h:1"}}}', error: /is not a node name/ },
    { yaml: 'dolt: {replication: cluster, cluster: {remotesapi: "127.0.0.1:1", peers: {n2: "h:1"}}}', error: /must be the peer's remotesapi URL/ },
    { yaml: 'dolt: {replication: cluster, cluster: {remotesapi: "127.0.0.1:1", peers: {n2: "http://h:1/db"}}}', error: /must be the peer's remotesapi URL/ },
    { yaml: `dolt: {replication: cluster, ${cluster.replace('}}', '}, ack_writes_timeout_secs: 61}')}}`, error: /ack_writes_timeout_secs/ },
    { yaml: `dolt: {replication: cluster, mode: external, ${cluster}}`, error: /cluster needs dolt\.mode: managed/ },
    { yaml: `dolt: {replication: cluster, remote_url_template: "file:///r/{database}", ${cluster}}`, error: /remote_url_template is for remote replication/ },
    { yaml: `dolt: {${cluster}}`, error: /dolt\.cluster is for dolt\.replication: cluster/ },
  ];
  for (const row of refused) {
    it(`refuses ${row.yaml}`, () => {
      expect(() => parseAgentConfig(base + row.yaml)).to.throw(AgentConfigError, row.error);
    });
  }

  it('takes ack_writes_timeout_secs up to Dolt\'s 60', () => {
    const config = parseAgentConfig(`${base}dolt: {replication: cluster, ${cluster.replace('}}', '}, ack_writes_timeout_secs: 60}')}}`);
    expect(config.dolt.cluster?.ackWritesTimeoutSecs).to.equal(60);
  });
});
