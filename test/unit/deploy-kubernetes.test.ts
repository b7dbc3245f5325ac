/**
 * deploy/kubernetes: every manifest is parsed with the `yaml` package (parseAllDocuments: a
 * syntax error or a duplicate key fails) and checked for what the operations guide promises:
 * the kinds and apiVersions; the Dolt StatefulSet with its headless Service, data volumes and
 * agent probes on /healthz; at least two proxies with /healthz readiness; the applications'
 * Service on 3306; the PodDisruptionBudgets; selectors that select the pods they are meant to;
 * every ConfigMap, Secret, key, volume and claim a pod refers to exists; one doltgate image
 * everywhere (the one kustomization.yaml sets, and the one `npm run image` builds); ports and
 * probe ports equal to what the rendered agent.yaml and proxy.yaml say, and those rendered
 * configs load with doltgate's own parsers.
 *
 * Rendering here substitutes ${NAME} like templates.yaml's render-config.sh does; the shell
 * script itself runs in test/integration/deploy-kubernetes-init.test.ts.
 */

import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { parseAgentConfig } from '../../agent/agent-config';
import { parseProxyConfig } from '../../proxy/config';
import { repoRoot } from '../bed/dolt-binary';

const dir = join(repoRoot, 'deploy', 'kubernetes');

type Obj = Record<string, any>;

interface Manifest {
  file: string;
  doc: Obj;
}

function loadAll(): Manifest[] {
  const out: Manifest[] = [];
  for (const file of readdirSync(dir).filter((name) => name.endsWith('.yaml')).sort()) {
    const docs = parseAllDocuments(readFileSync(join(dir, file), 'utf8'), { uniqueKeys: true });
    for (const doc of Array.isArray(docs) ? docs : [docs]) {
      if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors.map((error) => error.message).join('; ')}`);
      const value = doc.toJS() as Obj | null;
      if (value !== null) out.push({ file, doc: value });
    }
  }
  return out;
}

const apiVersions: Record<string, string> = {
  Namespace: 'v1',
  ConfigMap: 'v1',
  Secret: 'v1',
  Service: 'v1',
  PersistentVolumeClaim: 'v1',
  StatefulSet: 'apps/v1',
  Deployment: 'apps/v1',
  PodDisruptionBudget: 'policy/v1',
  Kustomization: 'kustomize.config.k8s.io/v1beta1',
};

function matches(selector: Record<string, string>, labels: Record<string, string>): boolean {
  return Object.entries(selector).every(([key, value]) => labels[key] === value);
}

/** ${NAME} → env[NAME], failing on a missing one (render-config.sh's rule). */
function render(template: string, env: Record<string, string>): string {
  return template.replace(/\$\{([A-Z_][A-Z0-9_]*)\}/g, (_, name: string) => {
    if (!(name in env)) throw new Error(`template uses \${${name}}, not in the test's environment`);
    return env[name];
  });
}

function containersOf(workload: Obj): Obj[] {
  const spec = workload.spec.template.spec;
  return [...(spec.initContainers ?? []), ...spec.containers];
}

function portNumber(container: Obj, name: string | number): number {
  if (typeof name === 'number') return name;
  const port = (container.ports ?? []).find((p: Obj) => p.name === name);
  if (!port) throw new Error(`container ${container.name} has no port named ${name}`);
  return port.containerPort;
}

describe('deploy/kubernetes manifests', () => {
  const manifests = loadAll();
  const objects = manifests.filter((m) => m.doc.kind !== 'Kustomization');
  const byKind = (kind: string, file?: string): Obj[] => objects.filter((m) => m.doc.kind === kind && (file === undefined || m.file === file)).map((m) => m.doc);
  const named = (kind: string, name: string): Obj => {
    const found = byKind(kind).find((doc) => doc.metadata.name === name);
    if (!found) throw new Error(`no ${kind} ${name} in deploy/kubernetes`);
    return found;
  };
  const kustomization = manifests.find((m) => m.doc.kind === 'Kustomization')?.doc as Obj;
  const cluster = named('ConfigMap', 'doltgate-cluster').data as Record<string, string>;
  const templates = named('ConfigMap', 'doltgate-templates').data as Record<string, string>;
  const secret = named('Secret', 'doltgate-credentials').stringData as Record<string, string>;
  const dolt = named('StatefulSet', 'dolt');
  const proxy = named('Deployment', 'doltgate-proxy');

  const podEnv = (podName: string): Record<string, string> => ({
    POD_NAME: podName,
    POD_NAMESPACE: 'doltgate',
    DOLTGATE_NODE_DIR: '/var/lib/doltgate/node',
    DOLTGATE_CLUSTER: cluster.cluster,
    DOLTGATE_ETCD_ENDPOINTS: cluster['etcd-endpoints'],
    DOLTGATE_REMOTE_URL: cluster['remote-url'],
    DOLTGATE_APP_USER: cluster['app-user'],
    PROXY_APP_NATIVE_HASH: secret['proxy-app-native-hash'],
    PROXY_APP_CACHING_SHA2_HASH: secret['proxy-app-caching-sha2-hash'],
  });
  const agentConfig = (podName: string) => {
    const saved = process.env.DOLTGATE_GRPC_TOKEN;
    process.env.DOLTGATE_GRPC_TOKEN = secret['grpc-token'];
    try {
      return parseAgentConfig(render(templates['agent.yaml'], podEnv(podName)), '/etc/doltgate/agent.yaml');
    } finally {
      if (saved === undefined) delete process.env.DOLTGATE_GRPC_TOKEN;
      else process.env.DOLTGATE_GRPC_TOKEN = saved;
    }
  };
  const proxyConfig = () => parseProxyConfig(parse(render(templates['proxy.yaml'], podEnv('doltgate-proxy-x'))), { file: 'proxy.yaml', env: { DOLTGATE_BACKEND_PASSWORD: secret['backend-password'] } });

  it('every file parses; every object has a known kind with its apiVersion, a DNS-1123 name and the doltgate namespace', () => {
    expect(manifests.length).to.be.at.least(12);
    for (const { file, doc } of manifests) {
      expect(apiVersions[doc.kind], `${file}: kind ${doc.kind}`).to.be.a('string');
      expect(doc.apiVersion, `${file}: ${doc.kind} apiVersion`).to.equal(apiVersions[doc.kind]);
      if (doc.kind === 'Kustomization') continue;
      expect(doc.metadata.name, `${file}: ${doc.kind} name`).to.match(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
      if (doc.kind !== 'Namespace' && file === 'etcd-trial.yaml') expect(doc.metadata.namespace, `${file}: ${doc.metadata.name}`).to.equal('doltgate');
      expect(doc.metadata.labels?.['app.kubernetes.io/part-of'], `${file}: ${doc.kind} ${doc.metadata.name} part-of label`).to.equal('doltgate');
    }
    expect(byKind('Namespace').map((ns) => ns.metadata.name)).to.deep.equal(['doltgate']);
  });

  it('kustomization.yaml lists every manifest but etcd-trial.yaml, sets the namespace, and names the one image', () => {
    const files = readdirSync(dir).filter((name) => name.endsWith('.yaml') && name !== 'kustomization.yaml' && name !== 'etcd-trial.yaml').sort();
    expect([...kustomization.resources].sort()).to.deep.equal(files);
    expect(kustomization.namespace).to.equal('doltgate');
    const images = new Set<string>();
    for (const workload of [...byKind('StatefulSet'), ...byKind('Deployment')].filter((w) => w.metadata.name !== 'etcd')) {
      for (const container of containersOf(workload)) images.add(container.image);
    }
    expect([...images], 'every doltgate container runs the same image').to.have.length(1);
    const [image] = [...images];
    const [name, tag] = image.split(':');
    expect(kustomization.images).to.deep.equal([{ name, newTag: tag }]);
    for (const workload of [...byKind('StatefulSet'), ...byKind('Deployment')]) {
      for (const container of containersOf(workload)) expect(container.image, `${workload.metadata.name}/${container.name}: a pinned tag`).to.match(/:[\w.-]+$/).and.not.match(/:latest$/);
    }
  });

  it('that image is the one `npm run image` builds: scripts/image.sh --name, doltgate/doltgate:<package.json version>', () => {
    const built = execFileSync('bash', [join(repoRoot, 'scripts', 'image.sh'), '--name'], { encoding: 'utf8' }).trim();
    const { version } = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string };
    expect(built).to.equal(`doltgate/doltgate:${version}`);
    const workloads = [...byKind('StatefulSet'), ...byKind('Deployment')].filter((w) => w.metadata.name !== 'etcd');
    for (const workload of workloads) {
      for (const container of containersOf(workload)) expect(container.image, `${workload.metadata.name}/${container.name}`).to.equal(built);
    }
    expect(kustomization.images, 'kustomization.yaml images:').to.deep.equal([{ name: built.split(':')[0], newTag: version }]);
  });

  it('the Dolt StatefulSet: three pods behind its headless Service, a data volume each, the agent in managed mode', () => {
    expect(dolt.spec.replicas).to.be.at.least(3);
    const service = named('Service', dolt.spec.serviceName);
    expect(service.spec.clusterIP).to.equal('None');
    expect(service.spec.publishNotReadyAddresses).to.equal(true);
    const labels = dolt.spec.template.metadata.labels;
    expect(matches(dolt.spec.selector.matchLabels, labels), 'StatefulSet selector selects its pods').to.equal(true);
    expect(matches(service.spec.selector, labels), 'headless Service selects the Dolt pods').to.equal(true);
    const agent = dolt.spec.template.spec.containers.find((c: Obj) => c.name === 'agent');
    expect(agent.command).to.deep.equal(['doltgate', 'agent', '--config', '/etc/doltgate/agent.yaml']);
    const claim = dolt.spec.volumeClaimTemplates.find((t: Obj) => t.metadata.name === 'data');
    expect(claim.spec.accessModes).to.deep.equal(['ReadWriteOnce']);
    const config = agentConfig('dolt-0');
    const dataMount = agent.volumeMounts.find((m: Obj) => m.name === 'data');
    expect(config.dolt.nodeDir.startsWith(`${dataMount.mountPath}/`), `node_dir ${config.dolt.nodeDir} is on the data volume`).to.equal(true);
    expect(config.dolt.mode).to.equal('managed');
    for (const port of service.spec.ports) expect(portNumber(agent, port.targetPort), `Service port ${port.name}`).to.equal(port.port);
  });

  it('agent.yaml rendered for a pod: name = pod name, ports = container ports, advertised under the headless Service, initial primary = pod 0', () => {
    const agent = dolt.spec.template.spec.containers.find((c: Obj) => c.name === 'agent');
    for (const pod of ['dolt-0', 'dolt-2']) {
      const config = agentConfig(pod);
      expect(config.name).to.equal(pod);
      expect(config.cluster).to.equal(cluster.cluster);
      expect(config.etcd.endpoints).to.deep.equal(cluster['etcd-endpoints'].split(','));
      expect(config.dolt.port).to.equal(portNumber(agent, 'mysql'));
      expect(config.grpc?.port).to.equal(portNumber(agent, 'grpc'));
      expect(config.metrics?.port).to.equal(portNumber(agent, 'metrics'));
      expect(config.dolt.advertise).to.deep.equal({ host: `${pod}.${dolt.spec.serviceName}.doltgate.svc`, port: portNumber(agent, 'mysql') });
      expect(config.grpcAdvertise).to.deep.equal({ host: `${pod}.${dolt.spec.serviceName}.doltgate.svc`, port: portNumber(agent, 'grpc') });
      expect(config.grpcToken).to.equal(secret['grpc-token']);
      expect(config.ha.initialPrimary).to.equal(`${dolt.metadata.name}-0`);
    }
  });

  it('the agent container: readiness and liveness from /healthz on the agent.yaml metrics port; Prometheus annotations agree', () => {
    const agent = dolt.spec.template.spec.containers.find((c: Obj) => c.name === 'agent');
    const metricsPort = agentConfig('dolt-1').metrics?.port;
    for (const probe of [agent.readinessProbe, agent.livenessProbe]) {
      expect(probe.httpGet.path).to.equal('/healthz');
      expect(portNumber(agent, probe.httpGet.port)).to.equal(metricsPort);
    }
    const annotations = dolt.spec.template.metadata.annotations;
    expect(Number(annotations['prometheus.io/port'])).to.equal(metricsPort);
    expect(annotations['prometheus.io/path']).to.equal('/metrics');
    expect(dolt.spec.template.spec.terminationGracePeriodSeconds, 'time to stop Dolt and release the lease').to.be.at.least(30);
  });

  it('the proxies: at least two, readiness from /healthz on the proxy.yaml metrics port, listening where the Service sends 3306', () => {
    expect(proxy.spec.replicas).to.be.at.least(2);
    const labels = proxy.spec.template.metadata.labels;
    expect(matches(proxy.spec.selector.matchLabels, labels)).to.equal(true);
    const container = proxy.spec.template.spec.containers.find((c: Obj) => c.name === 'proxy');
    expect(container.command).to.deep.equal(['doltgate', 'proxy', '--config', '/etc/doltgate/proxy.yaml']);
    const config = proxyConfig();
    expect(container.readinessProbe.httpGet.path).to.equal('/healthz');
    expect(portNumber(container, container.readinessProbe.httpGet.port)).to.equal(config.metrics?.port);
    expect(portNumber(container, 'mysql')).to.equal(config.listen.port);
    expect(portNumber(container, container.livenessProbe.tcpSocket.port)).to.equal(config.listen.port);
    expect(Number(proxy.spec.template.metadata.annotations['prometheus.io/port'])).to.equal(config.metrics?.port);
    expect(config.etcd?.endpoints).to.deep.equal(cluster['etcd-endpoints'].split(','));
    expect(config.users.map((user) => user.name)).to.deep.equal([cluster['app-user']]);
    expect(config.users[0].backendPassword).to.equal(secret['backend-password']);

    const service = named('Service', 'doltgate');
    expect(service.spec.clusterIP, 'a normal ClusterIP Service').to.not.equal('None');
    expect(matches(service.spec.selector, labels), 'the applications\' Service selects the proxies').to.equal(true);
    expect(matches(service.spec.selector, dolt.spec.template.metadata.labels), 'and not the Dolt pods').to.equal(false);
    expect(service.spec.ports).to.deep.equal([{ name: 'mysql', port: 3306, targetPort: 'mysql' }]);
  });

  it('PodDisruptionBudgets: Dolt maxUnavailable 1, proxies minAvailable 1, each selecting its pods', () => {
    const doltPdb = byKind('PodDisruptionBudget', 'dolt.yaml');
    const proxyPdb = byKind('PodDisruptionBudget', 'proxy.yaml');
    expect(doltPdb).to.have.length(1);
    expect(proxyPdb).to.have.length(1);
    expect(doltPdb[0].spec.maxUnavailable).to.equal(1);
    expect(matches(doltPdb[0].spec.selector.matchLabels, dolt.spec.template.metadata.labels)).to.equal(true);
    expect(matches(doltPdb[0].spec.selector.matchLabels, proxy.spec.template.metadata.labels)).to.equal(false);
    expect(proxyPdb[0].spec.minAvailable).to.equal(1);
    expect(matches(proxyPdb[0].spec.selector.matchLabels, proxy.spec.template.metadata.labels)).to.equal(true);
    expect(proxyPdb[0].spec.minAvailable, 'one proxy may still be drained').to.be.below(proxy.spec.replicas);
  });

  it('every ConfigMap, Secret, key, volume and claim a pod refers to exists', () => {
    const problems: string[] = [];
    const configMaps = Object.fromEntries(byKind('ConfigMap').map((cm) => [cm.metadata.name, cm.data ?? {}]));
    const secrets = Object.fromEntries(byKind('Secret').map((s) => [s.metadata.name, { ...(s.data ?? {}), ...(s.stringData ?? {}) }]));
    const claims = new Set(byKind('PersistentVolumeClaim').map((pvc) => pvc.metadata.name));
    for (const workload of [...byKind('StatefulSet'), ...byKind('Deployment')]) {
      const spec = workload.spec.template.spec;
      const volumes = new Set<string>([...(spec.volumes ?? []).map((v: Obj) => v.name), ...(workload.spec.volumeClaimTemplates ?? []).map((t: Obj) => t.metadata.name)]);
      for (const volume of spec.volumes ?? []) {
        if (volume.configMap && !configMaps[volume.configMap.name]) problems.push(`${workload.metadata.name}: volume ${volume.name} names ConfigMap ${volume.configMap.name}`);
        if (volume.secret && !secrets[volume.secret.secretName]) problems.push(`${workload.metadata.name}: volume ${volume.name} names Secret ${volume.secret.secretName}`);
        if (volume.persistentVolumeClaim && !claims.has(volume.persistentVolumeClaim.claimName)) problems.push(`${workload.metadata.name}: volume ${volume.name} names claim ${volume.persistentVolumeClaim.claimName}`);
      }
      for (const container of containersOf(workload)) {
        const where = `${workload.metadata.name}/${container.name}`;
        for (const mount of container.volumeMounts ?? []) if (!volumes.has(mount.name)) problems.push(`${where}: mounts unknown volume ${mount.name}`);
        for (const env of container.env ?? []) {
          const cm = env.valueFrom?.configMapKeyRef;
          const sk = env.valueFrom?.secretKeyRef;
          if (cm && !(cm.key in (configMaps[cm.name] ?? {}))) problems.push(`${where}: env ${env.name} names ConfigMap ${cm.name} key ${cm.key}`);
          if (sk && !(sk.key in (secrets[sk.name] ?? {}))) problems.push(`${where}: env ${env.name} names Secret ${sk.name} key ${sk.key}`);
        }
        for (const probe of [container.readinessProbe, container.livenessProbe].filter(Boolean)) {
          const port = probe.httpGet?.port ?? probe.tcpSocket?.port;
          try {
            portNumber(container, port);
          } catch (error) {
            problems.push(`${where}: probe port: ${(error as Error).message}`);
          }
        }
      }
    }
    for (const service of byKind('Service')) {
      const pods = [...byKind('StatefulSet'), ...byKind('Deployment')].filter((w) => matches(service.spec.selector, w.spec.template.metadata.labels));
      if (pods.length === 0) problems.push(`Service ${service.metadata.name} selects no pods`);
      for (const port of service.spec.ports) {
        for (const workload of pods) {
          if (!workload.spec.template.spec.containers.some((c: Obj) => (c.ports ?? []).some((p: Obj) => p.name === port.targetPort || p.containerPort === port.targetPort))) {
            problems.push(`Service ${service.metadata.name} port ${port.name}: no container port ${port.targetPort} in ${workload.metadata.name}`);
          }
        }
      }
    }
    expect(problems).to.deep.equal([]);
  });

  it('the init steps: the Dolt pods run init-node.sh and the proxies render-config.sh, from the templates ConfigMap, with every variable their templates use', () => {
    const uses = (template: string): string[] => [...new Set([...template.matchAll(/\$\{([A-Z_][A-Z0-9_]*)\}/g)].map((m) => m[1]))];
    const doltInit = dolt.spec.template.spec.initContainers.find((c: Obj) => c.name === 'init-node');
    expect(doltInit.command).to.deep.equal(['sh', '/etc/doltgate-templates/init-node.sh']);
    const doltEnv = new Set(doltInit.env.map((e: Obj) => e.name));
    for (const name of [...uses(templates['agent.yaml']), 'DOLTGATE_CONFIG_DIR', 'DOLTGATE_TEMPLATES', 'DOLTGATE_DATABASES', 'DOLTGATE_REMOTE_URL', 'DOLTGATE_BACKEND_PASSWORD']) {
      expect(doltEnv.has(name), `init-node env ${name}`).to.equal(true);
    }
    const podName = doltInit.env.find((e: Obj) => e.name === 'POD_NAME');
    expect(podName.valueFrom.fieldRef.fieldPath, 'the node name comes from the downward API').to.equal('metadata.name');
    const proxyInit = proxy.spec.template.spec.initContainers.find((c: Obj) => c.name === 'render-config');
    expect(proxyInit.command.slice(0, 2)).to.deep.equal(['sh', '/etc/doltgate-templates/render-config.sh']);
    const proxyEnv = new Set(proxyInit.env.map((e: Obj) => e.name));
    for (const name of uses(templates['proxy.yaml'])) expect(proxyEnv.has(name), `render-config env ${name}`).to.equal(true);
    for (const value of [...Object.values(secret), cluster.cluster, cluster['app-user']]) {
      expect(value, 'values render-config.sh can substitute').to.match(/^[A-Za-z0-9_*.-]+$/);
    }
  });

  it('etcd-trial.yaml: three members in a headless Service, started in parallel, with flags the etcd binary knows', () => {
    const etcd = named('StatefulSet', 'etcd');
    expect(etcd.spec.replicas).to.equal(3);
    expect(etcd.spec.podManagementPolicy).to.equal('Parallel');
    const service = named('Service', etcd.spec.serviceName);
    expect(service.spec.clusterIP).to.equal('None');
    const container = etcd.spec.template.spec.containers[0];
    const flags = (container.command as string[]).slice(1).map((arg) => arg.split('=')[0]);
    const initialCluster = (container.command as string[]).find((arg) => arg.startsWith('--initial-cluster='))?.split('=').slice(1).join('=') ?? '';
    expect(initialCluster.split(',').map((member) => member.split('=')[0])).to.deep.equal(['etcd-0', 'etcd-1', 'etcd-2']);
    // cluster-config.yaml's endpoints are these members' client URLs.
    expect(cluster['etcd-endpoints'].split(',')).to.deep.equal(['etcd-0', 'etcd-1', 'etcd-2'].map((name) => `http://${name}.${service.metadata.name}:${portNumber(container, 'client')}`));
    let help = '';
    try {
      help = execFileSync('etcd', ['--help'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (error) {
      help = `${(error as { stdout?: string }).stdout ?? ''}${(error as { stderr?: string }).stderr ?? ''}`;
    }
    expect(help, 'etcd --help (Debian etcd-server, installed by bootstrap)').to.contain('--initial-cluster');
    for (const flag of flags) expect(help, `etcd knows ${flag}`).to.contain(`${flag} `);
  });
});
