/**
 * Argument parsing of the control subcommands, row by row: the option forms, where the cluster
 * is found (options, --config, environment), and each subcommand's own rules. A row's name is
 * the answer it expects.
 */

import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseOptions, type ConnectionArgs, type Env, type OptionSpec } from '../../cli/cli-args';
import { CliError, ExitCode } from '../../cli/cli-io';
import { parseFailoverArgs } from '../../cli/failover';
import { parseHistoryArgs } from '../../cli/history';
import { parsePauseArgs } from '../../cli/pause';
import { parseStatusArgs } from '../../cli/status';
import { parseSwitchoverArgs } from '../../cli/switchover';

const specs: OptionSpec[] = [
  { name: 'flag', kind: 'flag', help: '' },
  { name: 'name', kind: 'string', help: '' },
  { name: 'count', kind: 'int', help: '' },
  { name: 'items', kind: 'list', help: '' },
];

describe('cli parseOptions', () => {
  const ok: Array<{ name: string; argv: string[]; expected: Record<string, unknown> }> = [
    { name: 'nothing gives nothing', argv: [], expected: {} },
    { name: 'a flag is true', argv: ['--flag'], expected: { flag: true } },
    { name: 'a string takes the next argument', argv: ['--name', 'x'], expected: { name: 'x' } },
    { name: 'a string takes =value', argv: ['--name=x=y'], expected: { name: 'x=y' } },
    { name: 'an int is a number', argv: ['--count', '42'], expected: { count: 42 } },
    { name: 'a list gathers repeats and comma lists', argv: ['--items', 'a,b', '--items=c', '--items', ' d , '], expected: { items: ['a', 'b', 'c', 'd'] } },
    { name: '-h is help', argv: ['-h'], expected: { help: true } },
    { name: 'the last string wins', argv: ['--name', 'x', '--name', 'y'], expected: { name: 'y' } },
  ];
  for (const row of ok) {
    it(row.name, () => {
      expect(parseOptions(row.argv, specs)).to.deep.equal(row.expected);
    });
  }

  const bad: Array<{ name: string; argv: string[]; message: RegExp }> = [
    { name: 'usage: unknown option', argv: ['--nope'], message: /unknown option --nope/ },
    { name: 'usage: positional', argv: ['status'], message: /unexpected argument "status"/ },
    { name: 'usage: missing value at the end', argv: ['--name'], message: /--name needs a value/ },
    { name: 'usage: an option where the value should be', argv: ['--name', '--flag'], message: /--name needs a value/ },
    { name: 'usage: a flag with a value', argv: ['--flag=yes'], message: /--flag takes no value/ },
    { name: 'usage: int not a number', argv: ['--count', '12ms'], message: /--count must be a whole number/ },
    { name: 'usage: negative int', argv: ['--count=-1'], message: /--count must be a whole number/ },
    { name: 'usage: empty list', argv: ['--items', ','], message: /--items needs a value/ },
    { name: 'usage: empty string', argv: ['--name='], message: /--name needs a non-empty value/ },
  ];
  for (const row of bad) {
    it(row.name, () => {
      expect(() => parseOptions(row.argv, specs)).to.throw(CliError, row.message).with.property('exitCode', ExitCode.usage);
    });
  }
});

describe('cli connection options', () => {
  let dir: string;
  let configFile: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'doltgate-cli-args-'));
    configFile = join(dir, 'agent.yaml');
    writeFileSync(configFile, 'name: n1\ncluster: prod\netcd:\n  endpoints: [http://10.0.0.1:2379, http://10.0.0.2:2379]\n');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  function parse(argv: string[], env: Env = {}): ConnectionArgs {
    const parsed = parseStatusArgs(argv, env);
    if (parsed === 'help') throw new Error('unexpected help');
    return parsed.connection;
  }

  const rows: Array<{ name: string; argv: () => string[]; env?: Env; expected: Partial<ConnectionArgs> }> = [
    {
      name: 'etcd list, cluster default, insecure, 5 s timeout',
      argv: () => ['--etcd', 'http://a:2379,http://b:2379'],
      expected: { etcd: ['http://a:2379', 'http://b:2379'], cluster: 'default', agents: [], tls: null, token: null, timeoutMs: 5000, json: false },
    },
    { name: 'cluster and json from options', argv: () => ['--etcd', 'http://a:2379', '--cluster', 'c1', '--json'], expected: { cluster: 'c1', json: true } },
    { name: 'etcd and cluster from the agent config', argv: () => ['--config', configFile], expected: { etcd: ['http://10.0.0.1:2379', 'http://10.0.0.2:2379'], cluster: 'prod' } },
    { name: 'options beat the agent config', argv: () => ['--config', configFile, '--cluster', 'other', '--etcd', 'http://x:1'], expected: { etcd: ['http://x:1'], cluster: 'other' } },
    {
      name: 'environment when no option says',
      argv: () => [],
      env: { DOLTGATE_ETCD: 'http://e:2379', DOLTGATE_CLUSTER: 'envc', DOLTGATE_TOKEN: 's3cret' },
      expected: { etcd: ['http://e:2379'], cluster: 'envc', token: 's3cret' },
    },
    { name: 'options beat the environment', argv: () => ['--token', 'opt', '--etcd', 'http://o:1'], env: { DOLTGATE_TOKEN: 'env', DOLTGATE_ETCD: 'http://e:1' }, expected: { token: 'opt', etcd: ['http://o:1'] } },
    { name: 'named agents replace discovery through etcd', argv: () => ['--agent', '127.0.0.1:7001,[::1]:7002', '--etcd', 'http://a:1'], expected: { agents: ['127.0.0.1:7001', '[::1]:7002'], etcd: [] } },
    { name: 'tls-ca implies tls', argv: () => ['--etcd', 'http://a:1', '--tls-ca', 'ca.pem'], expected: { tls: { ca: 'ca.pem', cert: null, key: null } } },
    { name: 'tls alone uses system roots', argv: () => ['--etcd', 'http://a:1', '--tls'], expected: { tls: { ca: null, cert: null, key: null } } },
    { name: 'client certificate for mTLS', argv: () => ['--etcd', 'http://a:1', '--tls-cert', 'c.pem', '--tls-key', 'k.pem'], expected: { tls: { ca: null, cert: 'c.pem', key: 'k.pem' } } },
    { name: 'timeout option', argv: () => ['--etcd', 'http://a:1', '--timeout', '750'], expected: { timeoutMs: 750 } },
  ];
  for (const row of rows) {
    it(row.name, () => {
      const parsed = parse(row.argv(), row.env);
      for (const [key, value] of Object.entries(row.expected)) expect(parsed[key as keyof ConnectionArgs], key).to.deep.equal(value);
    });
  }

  const bad: Array<{ name: string; argv: () => string[]; message: RegExp }> = [
    { name: 'usage: nowhere to look', argv: () => [], message: /say where the cluster is/ },
    { name: 'usage: etcd not a URL', argv: () => ['--etcd', 'localhost:2379'], message: /not an http:\/\/ or https:\/\/ URL/ },
    { name: 'usage: agent not host:port', argv: () => ['--agent', 'localhost'], message: /not HOST:PORT/ },
    { name: 'usage: bad cluster name', argv: () => ['--etcd', 'http://a:1', '--cluster', 'Bad/Name'], message: /--cluster: cluster name "Bad\/Name" is invalid/ },
    { name: 'usage: cert without key', argv: () => ['--etcd', 'http://a:1', '--tls-cert', 'c.pem'], message: /--tls-cert and --tls-key go together/ },
    { name: 'usage: missing config file', argv: () => ['--config', join(dir, 'missing.yaml')], message: /--config: .*cannot be read/ },
    { name: 'usage: tiny timeout', argv: () => ['--etcd', 'http://a:1', '--timeout', '5'], message: /at least 100 ms/ },
  ];
  for (const row of bad) {
    it(row.name, () => {
      expect(() => parse(row.argv())).to.throw(CliError, row.message).with.property('exitCode', ExitCode.usage);
    });
  }
});

describe('cli subcommand arguments', () => {
  const etcd = ['--etcd', 'http://127.0.0.1:2379'];

  it('help: --help and -h answer help before checking anything else', () => {
    expect(parseSwitchoverArgs(['--help'], {})).to.equal('help');
    expect(parseFailoverArgs(['-h'], {})).to.equal('help');
    expect(parseStatusArgs(['--help'], {})).to.equal('help');
  });

  const rows: Array<{ name: string; parse: () => unknown; expected: Record<string, unknown> }> = [
    { name: 'switchover: target, defaults', parse: () => parseSwitchoverArgs(['--to', 'n2', ...etcd], {}), expected: { target: 'n2', dryRun: false, drainTimeoutMs: null, noWait: false } },
    {
      name: 'switchover: dry run, drain timeout, no wait',
      parse: () => parseSwitchoverArgs(['--to=n2', '--dry-run', '--drain-timeout', '2500', '--no-wait', ...etcd], {}),
      expected: { target: 'n2', dryRun: true, drainTimeoutMs: 2500, noWait: true },
    },
    { name: 'failover: no target lets the agents choose', parse: () => parseFailoverArgs([...etcd], {}), expected: { target: null, force: false, dryRun: false } },
    { name: 'failover: target, force, dry run', parse: () => parseFailoverArgs(['--to', 'n3', '--force', '--dry-run', ...etcd], {}), expected: { target: 'n3', force: true, dryRun: true } },
    { name: 'pause: reason', parse: () => parsePauseArgs(['--reason', 'upgrading dolt', ...etcd], {}), expected: { reason: 'upgrading dolt' } },
    { name: 'pause: no reason is empty', parse: () => parsePauseArgs([...etcd], {}), expected: { reason: '' } },
    { name: 'history: default limit 10', parse: () => parseHistoryArgs([...etcd], {}), expected: { limit: 10 } },
    { name: 'history: limit', parse: () => parseHistoryArgs(['--limit', '3', ...etcd], {}), expected: { limit: 3 } },
  ];
  for (const row of rows) {
    it(row.name, () => {
      const parsed = row.parse() as Record<string, unknown>;
      for (const [key, value] of Object.entries(row.expected)) expect(parsed[key], key).to.deep.equal(value);
    });
  }

  const bad: Array<{ name: string; parse: () => unknown; message: RegExp }> = [
    { name: 'usage: switchover without --to', parse: () => parseSwitchoverArgs([...etcd], {}), message: /--to NODE is required/ },
    { name: 'usage: switchover to a malformed name', parse: () => parseSwitchoverArgs(['--to', 'N 2', ...etcd], {}), message: /is not a node name/ },
    { name: 'usage: failover --force takes no value', parse: () => parseFailoverArgs(['--force=yes', ...etcd], {}), message: /takes no value/ },
    { name: 'usage: history limit 0', parse: () => parseHistoryArgs(['--limit', '0', ...etcd], {}), message: /--limit must be from 1 to 1000/ },
    { name: 'usage: history limit above the maximum', parse: () => parseHistoryArgs(['--limit', '5000', ...etcd], {}), message: /--limit must be from 1 to 1000/ },
    { name: 'usage: status takes no --to', parse: () => parseStatusArgs(['--to', 'x', ...etcd], {}), message: /unknown option --to/ },
  ];
  for (const row of bad) {
    it(row.name, () => {
      expect(row.parse).to.throw(CliError, row.message).with.property('exitCode', ExitCode.usage);
    });
  }
});
