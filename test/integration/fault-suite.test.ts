/**
 * The fault suite's fixed slice (bench/faults/): one fault of every kind, in a fixed order, in one
 * sandbox under two writers through the proxy and a writability probe of every node, in each
 * replication mode (remote; Dolt's cluster replication with ack writes on). It asserts
 * what the design promises: no acknowledged write lost or off `main`, never two nodes taking
 * writes, the cluster converged after every fault. `npm run bench:faults` runs the same suite
 * over many faults and prints the numbers.
 */

import { expect } from 'chai';
import { join } from 'node:path';
import { prng } from '../../common/prng';
import { planFaults, runCampaign } from '../../bench/faults/fault-campaign';
import { faultKinds } from '../../bench/faults/fault-menu';
import { formatReport, verdict } from '../../bench/faults/fault-report';
import { partitionsSupported } from '../../bench/faults/loopback-partition';
import { tempDir } from '../bed/cleanup';
import { doltBinary, repoRoot } from '../bed/dolt-binary';

describe('fault suite slice (real sandbox: etcd, three Dolt nodes with agents, a proxy)', function () {
  this.timeout(30 * 60_000);

  for (const replication of ['remote', 'cluster'] as const) {
    it(`${replication} replication: one fault of each kind: nothing acknowledged lost, never two writable nodes, converged after each`, async () => {
      expect(await partitionsSupported(), 'iptables and cgroup v2 (scripts/bootstrap.sh installs iptables)').to.equal(null);
      const dir = await tempDir(`faults-${replication}`);
      const kinds = faultKinds.map((kind) => kind.name);
      const seed = 20261202;
      const log: string[] = [];
      const runs = await runCampaign({
        faults: planFaults(kinds, kinds.length, prng(seed)),
        faultsPerSandbox: kinds.length,
        etcdMembers: 1,
        etcdAuth: true,
        replication,
        seed,
        dir,
        doltBinary: doltBinary(),
        doltgateEntry: join(repoRoot, 'dist', 'bin', 'doltgate.js'),
        say: (line) => log.push(line),
      });
      process.stdout.write(`\n${formatReport(runs)}\n`);
      const result = verdict(runs);
      expect(result.problems, `${log.join('\n')}\n${runs.flatMap((run) => run.notes.map((note) => `${run.kind}: ${note}`)).join('\n')}`).to.deep.equal([]);
      expect(runs.map((run) => run.kind).sort()).to.deep.equal([...kinds].sort());
      for (const run of runs) expect(run.acknowledged, `${run.kind}: the writers were writing`).to.be.greaterThan(0);
    });
  }
});
