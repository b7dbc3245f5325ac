/**
 * shared-reads.ts on real loopback sockets: a backend-style socket reading through a relay, and
 * an accepted socket moved over to one — bytes both ways, close, the server's connection count —
 * and the cases where the move must refuse and leave the socket as it was.
 */

import { expect } from 'chai';
import * as net from 'node:net';
import * as tls from 'node:tls';

import { moveToSharedReads, ReadRelay } from '../../proxy/server/shared-reads';
import { eventually } from '../bed/eventually';

interface Pair {
  server: net.Server;
  accepted: net.Socket;
  client: net.Socket;
}

/** A listening server on 127.0.0.1 and one connection to it; `pauseOnConnect` as the proxy uses it. */
async function connectedPair(): Promise<Pair> {
  const server = net.createServer();
  const acceptedP = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  const client = net.connect({ host: '127.0.0.1', port });
  await new Promise<void>((resolve, reject) => client.once('connect', resolve).once('error', reject));
  return { server, accepted: await acceptedP, client };
}

function collect(relay: ReadRelay): Buffer[] {
  const got: Buffer[] = [];
  // The buffer is shared and reused: copy, as every real receiver must.
  relay.receiver = (buffer, bytes) => got.push(Buffer.from(buffer.subarray(0, bytes)));
  return got;
}

async function closeAll(p: Pair, ...more: net.Socket[]): Promise<void> {
  for (const s of [p.client, p.accepted, ...more]) s.destroy();
  await new Promise<void>((resolve) => p.server.close(() => resolve()));
}

describe('proxy/shared-reads', () => {
  it('net.connect with a relay: every byte the peer sends reaches the receiver, none as data events', async () => {
    const server = net.createServer((s) => s.end(Buffer.from('hello from the server')));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const relay = new ReadRelay();
    const got = collect(relay);
    const socket = net.connect(relay.connectOptions('127.0.0.1', (server.address() as net.AddressInfo).port));
    let dataEvents = 0;
    socket.on('data', () => dataEvents++);
    await new Promise<void>((resolve) => socket.once('end', resolve));
    expect(Buffer.concat(got).toString()).to.equal('hello from the server');
    expect(dataEvents).to.equal(0);
    socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('moves an accepted socket: reads go to the relay, writes still reach the client, close is seen by both', async () => {
    const p = await connectedPair();
    const relay = new ReadRelay();
    const got = collect(relay);
    const moved = moveToSharedReads(p.accepted, relay);
    expect(moved, 'moved').to.be.instanceOf(net.Socket);
    const m = moved as net.Socket;
    expect(p.accepted.destroyed, 'the old socket object is retired').to.equal(true);
    expect(m.remotePort).to.equal(p.client.localPort);

    p.client.write('ping 1');
    await eventually(() => expect(Buffer.concat(got).toString()).to.equal('ping 1'), { within: 5000, interval: 10 });
    // Larger than one read, to cross the shared buffer's size.
    const big = Buffer.alloc(200_000, 0x61);
    p.client.write(big);
    await eventually(() => expect(Buffer.concat(got).length).to.equal(6 + big.length), { within: 5000, interval: 10 });

    const back: Buffer[] = [];
    p.client.on('data', (c: Buffer) => back.push(c));
    m.write('pong');
    await eventually(() => expect(Buffer.concat(back).toString()).to.equal('pong'), { within: 5000, interval: 10 });

    const closed = new Promise<void>((resolve) => m.once('close', () => resolve()));
    p.client.end();
    await closed;
    // The server counts no connection for the retired object: close() completes.
    await closeAll(p, m);
  });

  it('pause and resume still stop and restart reads on a moved socket', async () => {
    const p = await connectedPair();
    const relay = new ReadRelay();
    const got = collect(relay);
    const m = moveToSharedReads(p.accepted, relay) as net.Socket;
    m.pause();
    p.client.write('while paused');
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(got.length, 'nothing read while paused').to.equal(0);
    m.resume();
    await eventually(() => expect(Buffer.concat(got).toString()).to.equal('while paused'), { within: 5000, interval: 10 });
    await closeAll(p, m);
  });

  it('refuses, leaving the socket as it was, when bytes are already buffered on it', async () => {
    const p = await connectedPair();
    p.accepted.pause();
    p.client.write('unread');
    await eventually(() => expect(p.accepted.readableLength).to.be.greaterThan(0), { within: 5000, interval: 10 });
    expect(moveToSharedReads(p.accepted, new ReadRelay())).to.equal(null);
    expect(p.accepted.destroyed).to.equal(false);
    const chunk = await new Promise<Buffer>((resolve) => p.accepted.once('data', resolve).resume());
    expect(chunk.toString()).to.equal('unread');
    await closeAll(p);
  });

  it('refuses a TLS socket (its reads belong to TLS)', async () => {
    const p = await connectedPair();
    const secure = new tls.TLSSocket(p.accepted, { isServer: false });
    secure.on('error', () => undefined);
    expect(moveToSharedReads(secure, new ReadRelay())).to.equal(null);
    expect(secure.destroyed).to.equal(false);
    secure.destroy();
    await closeAll(p);
  });

  it('stop() drops later reads', async () => {
    const p = await connectedPair();
    const relay = new ReadRelay();
    const got = collect(relay);
    const m = moveToSharedReads(p.accepted, relay) as net.Socket;
    relay.stop();
    p.client.write('after stop');
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(got.length).to.equal(0);
    await closeAll(p, m);
  });
});
