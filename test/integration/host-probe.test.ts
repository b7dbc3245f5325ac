import { expect } from 'chai';
import { HostProbe, tcpProbe } from '../../agent/health/host-probe';
import { createLogger } from '../../common/logger';
import { freePort } from '../../common/free-port';

describe('HostProbe (real sockets)', function () {
  this.timeout(10_000);

  it('finds 127.0.0.1 reachable (ICMP as root, else the TCP fallback, logged once)', async () => {
    const lines: string[] = [];
    const probe = new HostProbe(createLogger('probe', {}, (line) => lines.push(line)), 1000);
    try {
      const first = await probe.probe({ host: '127.0.0.1', port: await freePort() });
      const second = await probe.probe({ host: '127.0.0.1', port: await freePort() });
      expect(first.reachable).to.equal(true);
      expect(second.reachable).to.equal(true);
      if (first.method === 'tcp') expect(lines.filter((line) => line.includes('fall back to TCP'))).to.have.length(1);
      else expect(first.method).to.equal('icmp');
    } finally {
      probe.close();
    }
  });

  it('TCP fallback: a refused port means the host is up', async () => {
    const result = await tcpProbe({ host: '127.0.0.1', port: await freePort() }, 1000);
    expect(result).to.include({ reachable: true, method: 'tcp' });
  });

  it('TCP fallback: a host that cannot be resolved or reached is unreachable within the timeout', async () => {
    const started = Date.now();
    const result = await tcpProbe({ host: 'no-such-host.invalid', port: 3306 }, 500);
    expect(result.reachable).to.equal(false);
    expect(result.error).to.be.a('string');
    expect(Date.now() - started).to.be.lessThan(3000);
  });
});
