/**
 * deploy/config: the example agent.yaml and proxy.yaml are loaded by the agent's and the proxy's
 * own parsers (so they are valid, not just plausible), and every setting those parsers know is
 * in the example with a comment. The list of known settings is read from the parsers' source
 * (agent/agent-config.ts, proxy/config.ts), so a setting added there without documenting it here
 * fails this test, and so does a setting documented here that the parser does not read.
 *
 * Commented-out alternatives (the proxy's tls, backend_tls, static_topology; the agent's
 * grpc_token, grpc_tls) are parsed too: the test uncomments those blocks (convention: a
 * top-level `# key:` at column 0 and its `#   ` indented lines) and loads the result.
 */

import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { parseAgentConfig } from '../../agent/agent-config';
import { parseProxyConfig } from '../../proxy/config';
import { repoRoot } from '../bed/dolt-binary';

const agentExample = join(repoRoot, 'deploy', 'config', 'agent.example.yaml');
const proxyExample = join(repoRoot, 'deploy', 'config', 'proxy.example.yaml');

function source(path: string): string {
  return readFileSync(join(repoRoot, path), 'utf8');
}

/** Dotted paths of every key in a parsed YAML value; list items add `[]`. */
function keyPaths(value: unknown, prefix = ''): string[] {
  if (Array.isArray(value)) return value.flatMap((item) => keyPaths(item, `${prefix}[]`));
  if (typeof value !== 'object' || value === null) return [];
  return Object.entries(value as Record<string, unknown>).flatMap(([key, child]) => {
    const path = prefix === '' ? key : `${prefix}.${key}`;
    return [path, ...keyPaths(child, path)];
  });
}

/**
 * The agent parser's settings as dotted paths: the `path` arguments of reader.string/int/bool,
 * reader.address and direct reads like `doltRaw.mode`, plus the ha field table. Section
 * variables (`const doltRaw = reader.section(raw, 'dolt')`) give the prefixes.
 */
/** The etcd keys common/etcd-access.ts reads for both parsers (ETCD_ACCESS_KEYS). */
function etcdAccessKeys(): string[] {
  const m = /ETCD_ACCESS_KEYS = \[([^\]]*)\]/.exec(source('common/etcd-access.ts'));
  return m === null ? [] : [...m[1].matchAll(/'(\w+)'/g)].map((k) => k[1]);
}

export function agentSettingsFromSource(text: string): Set<string> {
  const prefixOf: Record<string, string> = { raw: '' };
  for (const m of text.matchAll(/const (\w+) = [^;]*?reader\.section\(\s*raw,\s*'(\w+)'\)/g)) prefixOf[m[1]] = `${m[2]}.`;
  // A nested section names its full path: reader.section(doltRaw, 'cluster', 'dolt.cluster').
  for (const m of text.matchAll(/const (\w+) = [^;]*?reader\.section\(\s*\w+,\s*'\w+',\s*'([\w.]+)'\)/g)) prefixOf[m[1]] = `${m[2]}.`;
  const paths = new Set<string>();
  for (const m of text.matchAll(/reader\.address\(\s*\w+,\s*'\w+',\s*'([\w.]+)'\)/g)) paths.add(m[1]);
  for (const m of text.matchAll(/reader\.(?:string|int|bool)\(\s*\w+,\s*'\w+',\s*'([\w.]+)'/g)) paths.add(m[1]);
  for (const m of text.matchAll(/reader\.address\(\s*(\w+),\s*'(\w+)'\)/g)) paths.add(`${prefixOf[m[1]] ?? '?.'}${m[2]}`);
  for (const m of text.matchAll(/\b(\w+)\.(\w+)\b/g)) if (m[1] in prefixOf) paths.add(`${prefixOf[m[1]]}${m[2]}`);
  for (const m of text.matchAll(/\[\s*'(\w+)',\s*'\w+'\s*\]/g)) paths.add(`ha.${m[1]}`);
  for (const m of text.matchAll(/reader\.section\(\s*raw,\s*'(\w+)'\)/g)) paths.add(m[1]);
  if (text.includes('parseEtcdAccess(')) for (const k of etcdAccessKeys()) paths.add(`etcd.${k}`);
  return paths;
}

/** The proxy parser's setting names: TOP_LEVEL_KEYS, USER_KEYS and every noUnknownKeys list. */
export function proxySettingsFromSource(text: string): Set<string> {
  const names = new Set<string>();
  const lists = [
    ...text.matchAll(/TOP_LEVEL_KEYS = new Set\(\[([^\]]*)\]/g),
    ...text.matchAll(/USER_KEYS = \[([^\]]*)\]/g),
    ...text.matchAll(/noUnknownKeys\(\s*\w+,\s*\[([^\]]*)\]/g),
  ];
  for (const m of lists) for (const name of m[1].matchAll(/'(\w+)'/g)) names.add(name[1]);
  if (text.includes('...ETCD_ACCESS_KEYS')) for (const k of etcdAccessKeys()) names.add(k);
  return names;
}

/** `section.key` of keys shown commented out inside a live top-level section (`  # key: value`). */
function nestedCommentedPaths(text: string): string[] {
  const paths: string[] = [];
  let section: string | null = null;
  // A commented-out sub-section (`  # cluster:` alone on its line) and its `  #   key: value` lines.
  let sub: string | null = null;
  for (const line of text.split('\n')) {
    const top = /^([a-z][a-z0-9_]*):/.exec(line);
    if (top) section = top[1];
    else if (/^\S/.test(line)) section = null;
    if (section === null) continue;
    const nested = /^  # ([a-z][a-z0-9_]*): \S+$/.exec(line);
    if (nested) paths.push(`${section}.${nested[1]}`);
    const opens = /^  # ([a-z][a-z0-9_]*):$/.exec(line);
    if (opens) {
      sub = opens[1];
      paths.push(`${section}.${sub}`);
      continue;
    }
    const deeper = /^  # {3}([a-z][a-z0-9_]*): \S.*$/.exec(line);
    if (deeper && sub !== null) paths.push(`${section}.${sub}.${deeper[1]}`);
    else if (!line.startsWith('  #   ')) sub = null;
  }
  return paths;
}

/**
 * Names of settings that have at least one occurrence (live or commented out) documented by a
 * comment: on the line itself, or as the nearest non-blank line above it.
 */
function documentedNames(text: string): Map<string, boolean> {
  const lines = text.split('\n');
  const found = new Map<string, boolean>();
  lines.forEach((line, i) => {
    const m = /^\s*(?:#\s*)?(?:- )?([a-z][a-z0-9_]*):(.*)$/.exec(line);
    if (!m) return;
    const name = m[1];
    const isComment = line.trimStart().startsWith('#');
    let documented = /\s#\s/.test(m[2]);
    let j = i - 1;
    while (j >= 0 && lines[j].trim() === '') j--;
    if (j >= 0) {
      const above = lines[j].trimStart();
      // Above a live key: any comment. Inside a commented-out block: an explanatory `# # ...` line.
      documented ||= isComment ? /^#\s*#/.test(above) || /^#\s+[A-Z]/.test(above) : above.startsWith('#');
    }
    found.set(name, (found.get(name) ?? false) || documented);
  });
  return found;
}

/**
 * The example with its commented-out top-level blocks (`# key:` at column 0 and the `#   `
 * lines under it) uncommented, and the live top-level blocks named in `drop` removed.
 */
function uncommentAlternatives(text: string, drop: string[] = []): string {
  const out: string[] = [];
  let inBlock = false;
  let dropping = false;
  for (const line of text.split('\n')) {
    const opens = /^# ([a-z][a-z0-9_]*:.*)$/.exec(line);
    if (opens) {
      inBlock = true;
      out.push(opens[1]);
      continue;
    }
    if (inBlock && line.startsWith('#   ')) {
      out.push(line.slice(2));
      continue;
    }
    inBlock = false;
    const key = /^([a-z][a-z0-9_]*):/.exec(line);
    if (key && drop.includes(key[1])) {
      dropping = true;
      continue;
    }
    if (dropping && (line.startsWith(' ') || line.trim() === '')) continue;
    dropping = false;
    out.push(line);
  }
  return out.join('\n');
}

const proxyEnv = { DOLTGATE_BACKEND_PASSWORD_APP: 'app-password', DOLTGATE_BACKEND_PASSWORD_REPORT: 'report-password', DOLTGATE_ETCD_PASSWORD: 'example-etcd-password' };

describe('deploy/config examples', () => {
  describe('agent.example.yaml', () => {
    const text = readFileSync(agentExample, 'utf8');
    const known = agentSettingsFromSource(source('agent/agent-config.ts'));

    const withToken = <T>(fn: () => T): T => {
      const saved = process.env.DOLTGATE_GRPC_TOKEN;
      const savedEtcd = process.env.DOLTGATE_ETCD_PASSWORD;
      process.env.DOLTGATE_GRPC_TOKEN = 'example-token-0123456789';
      process.env.DOLTGATE_ETCD_PASSWORD = 'example-etcd-password';
      try {
        return fn();
      } finally {
        if (saved === undefined) delete process.env.DOLTGATE_GRPC_TOKEN;
        else process.env.DOLTGATE_GRPC_TOKEN = saved;
        if (savedEtcd === undefined) delete process.env.DOLTGATE_ETCD_PASSWORD;
        else process.env.DOLTGATE_ETCD_PASSWORD = savedEtcd;
      }
    };

    it('is loaded by the agent parser with the values it shows', () => {
      const config = withToken(() => parseAgentConfig(text, agentExample));
      expect(config.name).to.equal('n1');
      expect(config.dolt.mode).to.equal('managed');
      expect(config.dolt.nodeDir).to.equal('/var/lib/doltgate/n1');
      expect(config.dolt.advertise).to.deep.equal({ host: '10.0.0.11', port: 3306 });
      expect(config.dolt.user).to.equal('doltgate');
      expect(config.backup?.url).to.contain('{database}');
      expect(config.metrics).to.deep.equal({ host: '10.0.0.11', port: 9101 });
      expect(config.grpcToken).to.equal('example-token-0123456789');
      expect(config.grpcTls).to.equal(null);
      expect(config.probeHosts).to.have.length(3);
    });

    it('its commented-out alternatives (grpc_token, grpc_tls) are valid settings too', () => {
      const config = withToken(() => parseAgentConfig(uncommentAlternatives(text), agentExample));
      expect(config.grpcToken).to.equal('change-me-to-something-long');
      expect(config.grpcTls).to.deep.equal({ cert: '/etc/doltgate/tls/agent-n1.crt', key: '/etc/doltgate/tls/agent-n1.key', ca: '/etc/doltgate/tls/ca.crt', requireClientCert: false });
    });

    it('the settings read from agent/agent-config.ts are what the example holds, no more, no less', () => {
      expect(known.size, `settings found in agent-config.ts: ${[...known].join(', ')}`).to.be.at.least(30);
      const live = keyPaths(parse(text)).filter((path) => !path.includes('[]'));
      const all = new Set([...live, ...keyPaths(parse(uncommentAlternatives(text))).filter((path) => !path.includes('[]')), ...nestedCommentedPaths(text)]);
      expect([...known].filter((path) => !all.has(path)), 'settings the parser reads but the example lacks').to.deep.equal([]);
      expect([...all].filter((path) => !known.has(path)), 'settings in the example the parser does not read').to.deep.equal([]);
    });

    it('every setting has a comment', () => {
      const documented = documentedNames(text);
      const leaves = new Set([...known].map((path) => path.split('.').pop() as string));
      expect([...leaves].filter((name) => documented.get(name) !== true)).to.deep.equal([]);
    });

    it('the node directory matches the systemd unit (StateDirectory doltgate/%i)', () => {
      const unit = source('deploy/systemd/doltgate-agent@.service');
      expect(unit).to.contain('StateDirectory=doltgate/%i');
      expect(withToken(() => parseAgentConfig(text, agentExample)).dolt.nodeDir).to.equal('/var/lib/doltgate/n1');
    });
  });

  describe('proxy.example.yaml', () => {
    const text = readFileSync(proxyExample, 'utf8');
    const known = proxySettingsFromSource(source('proxy/config.ts'));

    it('is loaded by the proxy parser (etcd topology, two users, backend passwords from the environment)', () => {
      const config = parseProxyConfig(parse(text), { file: proxyExample, baseDir: join(repoRoot, 'deploy', 'config'), env: proxyEnv });
      expect(config.listen).to.deep.equal({ host: '0.0.0.0', port: 3306 });
      expect(config.users.map((user) => user.name)).to.deep.equal(['app', 'report']);
      expect(config.users[0].backendPassword).to.equal('app-password');
      expect(config.etcd?.endpoints).to.have.length(3);
      expect(config.metrics).to.deep.equal({ host: '0.0.0.0', port: 9104 });
      expect(config.tls).to.equal(null);
    });

    it('its commented-out alternatives (tls, backend_tls, static_topology) are valid settings too', () => {
      const alternative = uncommentAlternatives(text, ['etcd']);
      const config = parseProxyConfig(parse(alternative), { file: proxyExample, baseDir: join(repoRoot, 'deploy', 'config'), env: proxyEnv });
      expect(config.etcd).to.equal(null);
      expect(config.staticTopology?.primary).to.equal('n1');
      expect(config.tls?.certFile).to.equal('/etc/doltgate/tls/proxy.crt');
      expect(config.backendTls?.serverName).to.equal('dolt.example.internal');
    });

    it('every setting proxy/config.ts knows is in the example with a comment', () => {
      expect(known.size, `settings found in proxy/config.ts: ${[...known].join(', ')}`).to.be.at.least(30);
      const documented = documentedNames(text);
      expect([...known].filter((name) => !documented.has(name)), 'settings missing from the example').to.deep.equal([]);
      expect([...known].filter((name) => documented.get(name) !== true), 'settings without a comment').to.deep.equal([]);
    });
  });
});
