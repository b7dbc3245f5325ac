/**
 * `doltgate agent --config agent.yaml`: loads the config, connects to etcd, starts the runtime
 * (which starts the local Dolt in managed mode), serves /metrics and /healthz, and stops cleanly
 * on SIGTERM/SIGINT: Dolt first, then the lease.
 */

import { runDaemonCommand } from '../common/daemon-command';
import { createLogger } from '../common/logger';
import { loadAgentConfig } from './agent-config';
import { serveMetrics } from './agent-metrics';
import { AgentRuntime } from './agent-runtime';
import { EtcdClusterStore } from './store/etcd-cluster-store';
import { MalformedValueLog } from './store/malformed-values';
import { clusterKeys } from '../proto';
import { startControlServer } from './control/control-server';

export interface RunningAgent {
  runtime: AgentRuntime;
  stop(): Promise<void>;
}

export async function runAgent(configPath: string): Promise<RunningAgent> {
  const config = loadAgentConfig(configPath);
  const logger = createLogger('agent', { node: config.name, cluster: config.cluster });
  const malformed = new MalformedValueLog(clusterKeys(config.cluster).prefix, logger.child('store'));
  const store = new EtcdClusterStore({
    endpoints: config.etcd.endpoints,
    tls: config.etcd.tls,
    auth: config.etcd.auth,
    cluster: config.cluster,
    callTimeoutMs: config.etcd.callTimeoutMs,
    onWatchRenew: (error) => logger.warn('etcd cancelled the watch on the cluster keys; watching again on a new etcd client', { error: error.message }),
    malformed,
  });
  const runtime = new AgentRuntime(config, store, logger);
  runtime.metrics.countMalformed(malformed);
  await runtime.start();
  const started: Array<{ stop(): Promise<void> }> = [];
  if (config.metrics) {
    const server = await serveMetrics(runtime.metrics, config.metrics.host, config.metrics.port, () => ({
      ok: runtime.lastDecision !== null,
      detail: { node: config.name, state: runtime.nodeState, lastDecision: runtime.lastDecision },
    }));
    started.push({ stop: () => new Promise<void>((resolve) => server.close(() => resolve())) });
  }
  if (config.grpc) {
    // Its own store: the runtime closes its store on stop, and a watch must not share its timeouts.
    const controlStore = new EtcdClusterStore({ endpoints: config.etcd.endpoints, tls: config.etcd.tls, auth: config.etcd.auth, cluster: config.cluster, callTimeoutMs: config.etcd.callTimeoutMs });
    const control = await startControlServer({
      host: config.grpc.host,
      port: config.grpc.port,
      store: controlStore,
      agentName: config.name,
      haConfig: config.ha,
      localStatus: () => ({ lastDecision: runtime.lastDecision }),
      findCommit: (token) => runtime.findCommit(token),
      tls: config.grpcTls ?? undefined,
      token: config.grpcToken ?? undefined,
      insecureNoAuth: config.grpcInsecureNoAuth,
      auditKeep: config.retention.keepAudit,
      logger,
    });
    started.push({
      stop: async () => {
        await control.stop();
        controlStore.close();
      },
    });
  }
  return {
    runtime,
    async stop() {
      for (const server of started.reverse()) await server.stop().catch(() => undefined);
      await runtime.stop();
    },
  };
}

export function agentCommand(args: string[]): Promise<number> {
  return runDaemonCommand(
    {
      name: 'agent',
      usage: 'usage: doltgate agent --config agent.yaml',
      help: 'Runs the HA agent beside one Dolt server. deploy/config/agent.example.yaml documents every option.',
      start: runAgent,
    },
    args,
  );
}
