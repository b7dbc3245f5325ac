/**
 * Logging in under attack, as pure logic: the handshake table (handshake-slots.ts) bounds
 * connections not logged in yet, in total and per address, and makes room by closing the one that
 * kept the proxy waiting longest; the throttle (login-throttle.ts) delays verdicts for an address
 * (and user) that keeps failing; the RSA bucket rations decrypts; heldVerdict holds both outcomes.
 */

import { expect } from 'chai';
import type { ProxyUser } from '../../proxy/config';
import { AccessDeniedError } from '../../proxy/server/errors';
import { clientAddressOf, HandshakeSlots } from '../../proxy/server/handshake-slots';
import { LoginThrottle, RateBucket } from '../../proxy/server/login-throttle';
import { heldVerdict, type LoginGate } from '../../proxy/server/login-verdict';

interface Entry {
  name: string;
  waitingSince: number | null;
}

describe('HandshakeSlots', () => {
  const slots = (max: number, maxPerAddress: number, minEvictableWaitMs = 100) =>
    new HandshakeSlots<Entry>({ max, maxPerAddress, minEvictableWaitMs }, (e) => e.waitingSince);
  const entry = (name: string, waitingSince: number | null): Entry => ({ name, waitingSince });

  const cases: Array<{ name: string; max: number; perAddress: number; held: Array<[string, Entry]>; from: string; now: number; expected: string }> = [
    { name: 'room: admitted, nothing evicted', max: 4, perAddress: 2, held: [['a', entry('a1', 0)]], from: 'a', now: 1000, expected: 'admit' },
    { name: 'address full, its oldest waiter long enough: evicted', max: 10, perAddress: 2, held: [['a', entry('a1', 50)], ['a', entry('a2', 0)], ['b', entry('b1', -500)]], from: 'a', now: 1000, expected: 'admit evicting a2' },
    { name: 'address full, nobody of it waited long: refused', max: 10, perAddress: 2, held: [['a', entry('a1', 950)], ['a', entry('a2', null)], ['b', entry('b1', 0)]], from: 'a', now: 1000, expected: 'refuse address_full' },
    { name: 'table full: the longest waiter anywhere goes', max: 3, perAddress: 3, held: [['a', entry('a1', 500)], ['b', entry('b1', 100)], ['c', entry('c1', null)]], from: 'd', now: 1000, expected: 'admit evicting b1' },
    { name: 'table full of handshakes the proxy is working on: refused', max: 2, perAddress: 2, held: [['a', entry('a1', null)], ['b', entry('b1', null)]], from: 'c', now: 1000, expected: 'refuse full' },
    { name: 'table full, waits all too short: refused', max: 2, perAddress: 2, held: [['a', entry('a1', 990)], ['b', entry('b1', 980)]], from: 'c', now: 1000, expected: 'refuse full' },
    { name: 'another address full does not stop this one', max: 10, perAddress: 1, held: [['a', entry('a1', null)]], from: 'b', now: 1000, expected: 'admit' },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const s = slots(c.max, c.perAddress);
      for (const [a, e] of c.held) s.add(a, e);
      const d = s.makeRoom(c.from, c.now);
      const got = d.admit ? `admit${d.evicted !== null ? ` evicting ${d.evicted.name}` : ''}` : `refuse ${d.reason}`;
      expect(got).to.equal(c.expected);
      expect(s.size).to.equal(c.held.length - (d.admit && d.evicted !== null ? 1 : 0));
    });
  }

  it('release is idempotent and frees the slot; an evicted entry holds none', () => {
    const s = slots(2, 2);
    const a = entry('a', 0);
    const b = entry('b', 0);
    s.add('x', a);
    s.add('x', b);
    const d = s.makeRoom('x', 1000);
    expect(d.admit && d.evicted).to.equal(a);
    s.release('x', a);
    expect(s.size).to.equal(1);
    s.release('x', b);
    s.release('x', b);
    expect(s.size).to.equal(0);
    expect(s.countFor('x')).to.equal(0);
  });

  it('clientAddressOf drops the IPv4-mapped prefix only', () => {
    expect(clientAddressOf({ remoteAddress: '::ffff:127.0.0.2' })).to.equal('127.0.0.2');
    expect(clientAddressOf({ remoteAddress: '::1' })).to.equal('::1');
    expect(clientAddressOf({ remoteAddress: undefined })).to.equal('unknown');
  });
});

describe('LoginThrottle', () => {
  const options = { userThreshold: 3, addressThreshold: 5, stepMs: 1000, maxDelayMs: 4000, forgetAfterMs: 60_000, maxTracked: 1000 };

  it('delays a user from an address from the threshold on, growing by a step, capped', () => {
    const t = new LoginThrottle(options);
    const delays: number[] = [];
    for (let i = 0; i < 8; i++) {
      delays.push(t.delayFor('a', 'app', i));
      t.recordFailure('a', 'app', i);
    }
    // Past 5 failures the address count (threshold 5) agrees; the cap holds at 4 s.
    expect(delays).to.deep.equal([0, 0, 0, 1000, 2000, 3000, 4000, 4000]);
    expect(t.delayFor('b', 'app', 8), 'another address is not slowed').to.equal(0);
  });

  it('a success clears the user count, not the address count', () => {
    const t = new LoginThrottle(options);
    for (let i = 0; i < 5; i++) t.recordFailure('a', `user${i}`, i);
    expect(t.delayFor('a', 'fresh', 5), 'names sprayed from one address: the address is slowed').to.equal(1000);
    for (let i = 0; i < 3; i++) t.recordFailure('a', 'app', 10 + i);
    t.recordSuccess('a', 'app');
    expect(t.delayFor('a', 'app', 20)).to.equal(4000); // 8 address failures: (8 - 5 + 1) steps
  });

  it('failures age out after forgetAfterMs', () => {
    const t = new LoginThrottle(options);
    for (let i = 0; i < 4; i++) t.recordFailure('a', 'app', i);
    expect(t.delayFor('a', 'app', 10)).to.equal(2000);
    expect(t.delayFor('a', 'app', 60_010)).to.equal(0);
  });

  it('keeps at most maxTracked keys, forgetting the stalest', () => {
    const t = new LoginThrottle({ ...options, maxTracked: 10 });
    for (let i = 0; i < 3; i++) t.recordFailure('10.9.9.9', 'x', i);
    expect(t.delayFor('10.9.9.9', 'x', 3)).to.equal(1000);
    for (let i = 0; i < 100; i++) t.recordFailure(`10.0.0.${i}`, 'x', 10 + i);
    expect(t.tracked).to.equal(10);
    expect(t.delayFor('10.9.9.9', 'x', 200), 'the stalest key was forgotten').to.equal(0);
  });
});

describe('RateBucket', () => {
  it('allows the burst, then the rate', () => {
    const b = new RateBucket(10, 3, 0);
    const taken = [0, 0, 0, 0].map(() => b.tryTake(0));
    expect(taken).to.deep.equal([true, true, true, false]);
    expect(b.tryTake(50), 'half a token later').to.equal(false);
    expect(b.tryTake(150), 'one token later').to.equal(true);
    expect([1, 2, 3, 4].map(() => b.tryTake(10_000)).filter(Boolean)).to.have.length(3);
  });
});

describe('heldVerdict', () => {
  const user = { name: 'app' } as ProxyUser;
  const gate = (holdMs: number) => {
    const calls: string[] = [];
    const g: LoginGate = {
      holdFor: (u) => (calls.push(`hold ${u}`), holdMs),
      failed: (u) => calls.push(`failed ${u}`),
      succeeded: (u) => calls.push(`succeeded ${u}`),
    };
    return { g, calls };
  };

  it('counts a wrong password before holding it, and holds a success as long', async () => {
    const bad = gate(30);
    const t0 = performance.now();
    const error = await heldVerdict(bad.g, 'app', Promise.reject(new AccessDeniedError('app', true))).then(() => null, (e: Error) => e);
    expect(error).to.be.instanceOf(AccessDeniedError);
    expect(performance.now() - t0).to.be.at.least(25);
    expect(bad.calls).to.deep.equal(['hold app', 'failed app']);
    const good = gate(30);
    const t1 = performance.now();
    expect(await heldVerdict(good.g, 'app', Promise.resolve(user))).to.equal(user);
    expect(performance.now() - t1).to.be.at.least(25);
    expect(good.calls).to.deep.equal(['hold app', 'succeeded app']);
  });

  it('an error that is not a wrong password does not count as a failure', async () => {
    const g = gate(0);
    const error = await heldVerdict(g.g, 'app', Promise.reject(new Error('client left'))).then(() => null, (e: Error) => e);
    expect(error?.message).to.equal('client left');
    expect(g.calls).to.deep.equal(['hold app']);
  });
});
