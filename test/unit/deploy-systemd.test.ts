/**
 * deploy/systemd: the units are checked by systemd itself (`systemd-analyze`, from Debian's
 * systemd package; scripts/install-deploy-tools.sh installs it) and hold the options the
 * operations guide promises.
 *
 * How `verify` is run: it refuses a unit whose ExecStart binary does not exist, and CI machines
 * have no /usr/local/bin/doltgate. So each unit is copied into a temp dir under its own file name
 * with exactly that path replaced by a stub executable there; nothing else changes. `verify`
 * exits 0 even for unknown keys or bad values (it only warns), so the test fails on ANY output
 * line that names the unit (its file path or unit name); lines about the host's own units are
 * ignored. A deliberately broken copy proves the filter catches warnings. The template is also
 * verified as a real instance name (doltgate-agent@n1.service).
 *
 * `security --offline` gives systemd's exposure score of the unit file; the thresholds below
 * are the measured scores (1.9 and 1.7 of 10) rounded up, so weakening the hardening fails.
 */

import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../bed/dolt-binary';

const unitDir = join(repoRoot, 'deploy', 'systemd');
const installedBinary = '/usr/local/bin/doltgate';

interface Run {
  code: number;
  output: string;
}

function run(command: string, args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { timeout: 60_000 }, (error, stdout, stderr) => {
      if (error && (error as NodeJS.ErrnoException).code === 'ENOENT') {
        reject(new Error(`${command} is not installed: run scripts/install-deploy-tools.sh (Debian package systemd)`));
        return;
      }
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
      resolve({ code, output: `${stdout}${stderr}` });
    });
  });
}

/** Key=value pairs of a unit, by section; repeated keys keep every value in order. */
function parseUnit(text: string): Map<string, Map<string, string[]>> {
  const sections = new Map<string, Map<string, string[]>>();
  let current: Map<string, string[]> | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      current = new Map();
      sections.set(header[1], current);
      continue;
    }
    const at = line.indexOf('=');
    if (at < 0 || !current) throw new Error(`not a unit line: ${line}`);
    const key = line.slice(0, at);
    current.set(key, [...(current.get(key) ?? []), line.slice(at + 1)]);
  }
  return sections;
}

function setting(unit: Map<string, Map<string, string[]>>, section: string, key: string): string | undefined {
  const values = unit.get(section)?.get(key);
  return values?.[values.length - 1];
}

interface Staged {
  dir: string;
  file: string;
}

/** A copy of the unit whose ExecStart binary exists (a stub); see the file comment. */
async function stage(unitName: string, extraLines = ''): Promise<Staged> {
  const dir = await mkdtemp(join(tmpdir(), 'doltgate-systemd-'));
  const stub = join(dir, 'doltgate');
  await writeFile(stub, '#!/bin/sh\nexit 0\n');
  await chmod(stub, 0o755);
  const text = await readFile(join(unitDir, unitName), 'utf8');
  const occurrences = text.split(installedBinary).length - 1;
  expect(occurrences, `${unitName} names ${installedBinary} once, in ExecStart`).to.equal(1);
  const file = join(dir, unitName);
  await writeFile(file, text.replace(installedBinary, stub).replace('[Service]\n', `[Service]\n${extraLines}`));
  return { dir, file };
}

/** Lines of verify's output about this unit (by file path or unit name). */
function linesAbout(output: string, staged: Staged, unitNames: string[]): string[] {
  return output
    .split('\n')
    .filter((line) => line.trim() !== '')
    .filter((line) => line.includes(staged.dir) || unitNames.some((name) => line.includes(name)));
}

async function verify(staged: Staged, target: string, unitNames: string[]): Promise<{ run: Run; about: string[] }> {
  const result = await run('systemd-analyze', ['verify', target]);
  return { run: result, about: linesAbout(result.output, staged, unitNames) };
}

describe('deploy/systemd units (systemd-analyze)', function () {
  this.timeout(60_000);
  const cleanups: string[] = [];

  after(async () => {
    for (const dir of cleanups) await rm(dir, { recursive: true, force: true });
  });

  const units = [
    { file: 'doltgate-agent@.service', names: ['doltgate-agent@'], instance: 'doltgate-agent@n1.service', maxExposure: 2.0 },
    { file: 'doltgate-proxy.service', names: ['doltgate-proxy'], instance: null, maxExposure: 1.8 },
  ];

  for (const unit of units) {
    it(`${unit.file}: systemd-analyze verify passes with no warning about the unit`, async () => {
      const staged = await stage(unit.file);
      cleanups.push(staged.dir);
      const result = await verify(staged, staged.file, unit.names);
      expect(result.about, `systemd-analyze verify said:\n${result.run.output}`).to.deep.equal([]);
      expect(result.run.code, `systemd-analyze verify exit code; output:\n${result.run.output}`).to.equal(0);
      if (unit.instance) {
        const instance = join(staged.dir, unit.instance);
        await symlink(staged.file, instance);
        const asInstance = await verify(staged, instance, unit.names);
        expect(asInstance.about, `systemd-analyze verify ${unit.instance} said:\n${asInstance.run.output}`).to.deep.equal([]);
        expect(asInstance.run.code).to.equal(0);
      }
    });

    it(`${unit.file}: systemd-analyze security --offline rates its exposure at most ${unit.maxExposure}`, async () => {
      const staged = await stage(unit.file);
      cleanups.push(staged.dir);
      const result = await run('systemd-analyze', ['security', '--offline=yes', '--no-pager', staged.file]);
      const score = /Overall exposure level for \S+: ([\d.]+)/.exec(result.output);
      expect(score, `no exposure level in:\n${result.output}`).to.not.equal(null);
      expect(Number((score as RegExpExecArray)[1])).to.be.at.most(unit.maxExposure);
      const threshold = await run('systemd-analyze', ['security', '--offline=yes', '--no-pager', `--threshold=${Math.round(unit.maxExposure * 10)}`, staged.file]);
      expect(threshold.code, 'systemd-analyze security --threshold exit code').to.equal(0);
    });
  }

  it('the check catches a bad unit: an unknown key and a bad value are reported', async () => {
    const staged = await stage('doltgate-proxy.service', 'NoSuchOption=yes\nRestart=sometimes\n');
    cleanups.push(staged.dir);
    const result = await verify(staged, staged.file, ['doltgate-proxy']);
    expect(result.about.join('\n')).to.match(/Unknown key 'NoSuchOption'/).and.to.match(/restart specifier.*sometimes/);
  });

  it('doltgate-agent@.service: one node per instance, owns its Dolt, restarts with back-off, hardened', async () => {
    const unit = parseUnit(await readFile(join(unitDir, 'doltgate-agent@.service'), 'utf8'));
    const s = (key: string): string | undefined => setting(unit, 'Service', key);
    expect(s('ExecStart')).to.equal(`${installedBinary} agent --config /etc/doltgate/agent-%i.yaml`);
    expect(s('User')).to.equal('doltgate');
    // Stop: SIGTERM to the agent (it stops Dolt, then its lease), SIGKILL to whatever is left.
    expect(s('KillMode')).to.equal('mixed');
    expect(s('Restart')).to.equal('on-failure');
    expect(s('RestartSec')).to.match(/^\d+s$/);
    expect(setting(unit, 'Unit', 'StartLimitBurst')).to.match(/^\d+$/);
    expect(setting(unit, 'Unit', 'StartLimitIntervalSec')).to.match(/^\d+$/);
    expect(s('StateDirectory')).to.equal('doltgate/%i');
    expect(s('ReadWritePaths')).to.equal('/var/lib/doltgate/%i');
    expect(s('ProtectSystem')).to.equal('strict');
    for (const key of ['NoNewPrivileges', 'ProtectHome', 'PrivateTmp', 'LockPersonality', 'RestrictSUIDSGID']) expect(s(key), key).to.equal('yes');
    expect(s('CapabilityBoundingSet')).to.equal('CAP_NET_RAW');
    expect(s('AmbientCapabilities')).to.equal('CAP_NET_RAW');
    expect(s('SystemCallArchitectures')).to.equal('native');
    expect(s('RestrictAddressFamilies')).to.equal('AF_UNIX AF_INET AF_INET6 AF_NETLINK');
    // V8's JIT aborts under MemoryDenyWriteExecute (the unit's comment says how that was measured).
    expect(s('MemoryDenyWriteExecute')).to.equal(undefined);
    expect(setting(unit, 'Install', 'WantedBy')).to.equal('multi-user.target');
  });

  it('doltgate-proxy.service: no capabilities, read-only file system, same hardening', async () => {
    const unit = parseUnit(await readFile(join(unitDir, 'doltgate-proxy.service'), 'utf8'));
    const s = (key: string): string | undefined => setting(unit, 'Service', key);
    expect(s('ExecStart')).to.equal(`${installedBinary} proxy --config /etc/doltgate/proxy.yaml`);
    expect(s('User')).to.equal('doltgate');
    expect(s('EnvironmentFile')).to.equal('-/etc/doltgate/proxy.env');
    expect(s('Restart')).to.equal('on-failure');
    expect(s('CapabilityBoundingSet')).to.equal('');
    expect(s('AmbientCapabilities')).to.equal('');
    expect(s('ProtectSystem')).to.equal('strict');
    expect(s('ReadWritePaths')).to.equal(undefined);
    for (const key of ['NoNewPrivileges', 'ProtectHome', 'PrivateTmp', 'LockPersonality']) expect(s(key), key).to.equal('yes');
    expect(s('MemoryDenyWriteExecute')).to.equal(undefined);
  });
});
