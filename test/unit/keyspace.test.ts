/**
 * The etcd keyspace's ordering invariant: audit records sort before every key of the cluster's
 * state, so a snapshot (one range read from `stateStart`) holds all state and no audit record.
 */

import { expect } from 'chai';
import { clusterKeys, InvalidClusterNameError } from '../../proto/keyspace';

describe('cluster keyspace', () => {
  const keys = clusterKeys('prod');
  const stateKeys = [keys.leader, keys.topology, keys.pause, keys.databases, keys.member('n1'), keys.member('0'), keys.op('switchover-1'), keys.history(0), keys.history(10 ** 11)];
  const auditKeys = [keys.audit(0, '00000000'), keys.audit(Date.now(), 'ffffffff'), keys.audit(10 ** 14, 'zz')];

  it('every state key sorts at or after stateStart, inside the prefix', () => {
    for (const k of stateKeys) {
      expect(Buffer.compare(Buffer.from(k), Buffer.from(keys.stateStart)), k).to.equal(1);
      expect(k.startsWith(keys.prefix), k).to.equal(true);
    }
  });

  it('every audit key sorts before stateStart, and audit keys sort by time', () => {
    for (const k of auditKeys) expect(Buffer.compare(Buffer.from(k), Buffer.from(keys.stateStart)), k).to.equal(-1);
    const sorted = [...auditKeys].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    expect(sorted).to.deep.equal(auditKeys);
  });

  it('refuses cluster names that could nest one cluster in another', () => {
    expect(() => clusterKeys('a/b')).to.throw(InvalidClusterNameError);
    expect(() => clusterKeys('')).to.throw(InvalidClusterNameError);
  });
});
