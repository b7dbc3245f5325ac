import { expect } from 'chai';
import { parseSandboxArgs, statePids } from '../../sandbox/sandbox-command';

describe('doltgate sandbox arguments', () => {
  const rows: Array<{ name: string; args: string[]; expected?: { action: string; dir: string; detach: boolean; replication: string }; error?: RegExp }> = [
    { name: 'up in the default directory', args: ['up'], expected: { action: 'up', dir: '/w/.doltgate-sandbox', detach: false, replication: 'remote' } },
    { name: 'up detached in a relative directory', args: ['up', '--detach', '--dir', 'sb'], expected: { action: 'up', dir: '/w/sb', detach: true, replication: 'remote' } },
    { name: 'down in an absolute directory', args: ['down', '--dir', '/tmp/x'], expected: { action: 'down', dir: '/tmp/x', detach: false, replication: 'remote' } },
    { name: 'help', args: ['--help'], expected: { action: 'help', dir: '/w/.doltgate-sandbox', detach: false, replication: 'remote' } },
    { name: 'up with Dolt\'s cluster replication', args: ['up', '--replication', 'cluster'], expected: { action: 'up', dir: '/w/.doltgate-sandbox', detach: false, replication: 'cluster' } },
    { name: 'up with remote replication, said', args: ['up', '--replication', 'remote', '--detach'], expected: { action: 'up', dir: '/w/.doltgate-sandbox', detach: true, replication: 'remote' } },
    { name: 'refuses another replication', args: ['up', '--replication', 'binlog'], error: /--replication needs remote or cluster/ },
    { name: 'refuses --replication without a value', args: ['up', '--replication'], error: /--replication needs remote or cluster/ },
    { name: 'refuses down --replication', args: ['down', '--replication', 'cluster'], error: /--replication goes with up/ },
    { name: 'refuses no action', args: [], error: /say up or down/ },
    { name: 'refuses an unknown word', args: ['start'], error: /unexpected argument 'start'/ },
    { name: 'refuses --dir without a value', args: ['up', '--dir'], error: /--dir needs a directory/ },
    { name: 'refuses down --detach', args: ['down', '--detach'], error: /--detach goes with up/ },
    { name: 'refuses two actions', args: ['up', 'down'], error: /unexpected argument 'down'/ },
  ];
  for (const row of rows) {
    it(row.name, () => {
      if (row.error) expect(() => parseSandboxArgs(row.args, '/w')).to.throw(row.error);
      else expect(parseSandboxArgs(row.args, '/w')).to.deep.equal(row.expected);
    });
  }

  it('stops the proxy and agents before etcd', () => {
    const state = { proxy: { pid: 10 }, nodes: [{ agentPid: 11 }, { agentPid: 12 }], etcdPids: [13] };
    expect(statePids(state)).to.deep.equal([10, 11, 12, 13]);
  });
});
