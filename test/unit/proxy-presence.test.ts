import { expect } from 'chai';
import { decodeProxyPresence, encodeProxyPresence, proxyHandedOver, type ProxyPresence } from '../../proto';
import { followPresence } from '../../proxy/cluster/presence-follower';
import type { PresenceState } from '../../proxy/cluster/proxy-presence-publisher';

const at = '2026-12-03T00:00:00.000Z';
const record = (epoch: number, state: ProxyPresence['state'], draining: number): ProxyPresence => ({ id: 'p1', epoch, state, draining, at });

describe('proxy presence records', () => {
  const rows: Array<[string, ProxyPresence, number, boolean]> = [
    ['still on the epoch before the switchover', record(4, 'stable', 0), 5, false],
    ['applied the switchover, a transaction still open on the old primary', record(5, 'switchover', 1), 5, false],
    ['applied the switchover, nothing left on the old primary', record(5, 'switchover', 0), 5, true],
    ['already past it (the new primary published)', record(6, 'stable', 0), 5, true],
    ['past it, draining for a later switchover', record(6, 'switchover', 2), 5, true],
  ];
  for (const [what, presence, epoch, handedOver] of rows) {
    it(`${what}: handed over at epoch ${epoch} is ${handedOver}`, () => {
      expect(proxyHandedOver(presence, epoch)).to.equal(handedOver);
    });
  }

  it('round-trips, and a malformed value names its first bad field', () => {
    expect(decodeProxyPresence(encodeProxyPresence(record(3, 'failover', 0)))).to.deep.equal(record(3, 'failover', 0));
    const bad: Array<[string, RegExp]> = [
      ['not json', /not JSON/],
      ['[]', /not an object/],
      [JSON.stringify({ ...record(1, 'stable', 0), id: '' }), /id must be/],
      [JSON.stringify({ ...record(1, 'stable', 0), epoch: -1 }), /epoch must be/],
      [JSON.stringify({ ...record(1, 'stable', 0), epoch: 1.5 }), /epoch must be/],
      [JSON.stringify({ ...record(1, 'stable', 0), state: 'gone' }), /state must be one of/],
      [JSON.stringify({ ...record(1, 'stable', 0), draining: '1' }), /draining must be/],
      [JSON.stringify({ ...record(1, 'stable', 0), at: 7 }), /at must be/],
    ];
    for (const [raw, message] of bad) expect(() => decodeProxyPresence(raw), raw).to.throw(message);
  });
});

describe('followPresence', () => {
  function fakeServer(): { state: PresenceState | null; apply(next: PresenceState): void; presenceState(): PresenceState | null; onTopologyApplied(listener: () => void): () => void; listeners: Set<() => void> } {
    const listeners = new Set<() => void>();
    return {
      state: null,
      listeners,
      apply(next) {
        this.state = next;
        for (const listener of listeners) listener();
      },
      presenceState() {
        return this.state;
      },
      onTopologyApplied(listener) {
        listeners.add(listener);
        return () => listeners.delete(listener);
      },
    };
  }

  it('says each applied topology, then polls while connections drain until none is left, then stops', async () => {
    const server = fakeServer();
    const said: PresenceState[] = [];
    const stop = followPresence(server, { publish: (state) => said.push({ ...state }) }, 5);
    expect(said, 'nothing before a topology').to.deep.equal([]);
    server.apply({ epoch: 1, state: 'stable', draining: 0 });
    server.apply({ epoch: 2, state: 'switchover', draining: 2 });
    await new Promise((resolve) => setTimeout(resolve, 20));
    server.state = { epoch: 2, state: 'switchover', draining: 0 };
    await new Promise((resolve) => setTimeout(resolve, 20));
    const count = said.length;
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(said.length, 'no polling once nothing drains').to.equal(count);
    expect(said[0]).to.deep.equal({ epoch: 1, state: 'stable', draining: 0 });
    expect(said.slice(1, 3)).to.deep.equal([{ epoch: 2, state: 'switchover', draining: 2 }, { epoch: 2, state: 'switchover', draining: 2 }]);
    expect(said[said.length - 1]).to.deep.equal({ epoch: 2, state: 'switchover', draining: 0 });
    stop();
    expect(server.listeners.size).to.equal(0);
  });
});
