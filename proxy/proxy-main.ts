/**
 * `doltgate proxy --config proxy.yaml`: config → topology source (etcd, or the static topology in
 * the config) → ProxyServer → /metrics and /healthz. Returns a handle whose `stop()` ends all of
 * it (the caller — bin/doltgate — maps SIGTERM/SIGINT to it). Logs are JSON lines on stderr;
 * the config summary logged at start names users but never hashes or passwords.
 *
 * Start order: the topology source first (it resolves within its call timeout even when etcd is
 * down, and then the proxy starts with writes held), then the listener, then HTTP.
 */

import type { Server } from 'node:http';
import { createLogger, type Logger } from '../common/logger';
import { EtcdTopologySource } from './cluster/etcd-topology-source';
import { followPresence } from './cluster/presence-follower';
import { ProxyPresencePublisher } from './cluster/proxy-presence-publisher';
import { StaticTopologySource, type TopologySource } from './cluster/topology-source';
import { describeProxyConfig, loadProxyConfig, type ProxyConfig } from './config';
import { ProxyMetrics, serveProxyHttp } from './proxy-metrics';
import { ProxyServer } from './server/proxy-server';

export interface RunningProxy {
  readonly server: ProxyServer;
  readonly metrics: ProxyMetrics;
  /** host:port of /metrics and /healthz, or null when metrics are not configured. */
  readonly httpAddress: { host: string; port: number } | null;
  stop(): Promise<void>;
}

export async function runProxy(configPath: string, logger: Logger = createLogger('proxy')): Promise<RunningProxy> {
  return startProxy(loadProxyConfig(configPath), logger);
}

/** Same as runProxy from an already parsed config (tests, the sandbox). */
export async function startProxy(config: ProxyConfig, logger: Logger = createLogger('proxy')): Promise<RunningProxy> {
  logger.info('starting proxy', describeProxyConfig(config));
  const source: TopologySource =
    config.etcd !== null
      ? new EtcdTopologySource({ endpoints: config.etcd.endpoints, tls: config.etcd.tls, auth: config.etcd.auth, cluster: config.cluster, logger: logger.child('topology') })
      : new StaticTopologySource(config.staticTopology as NonNullable<ProxyConfig['staticTopology']>);
  await source.start();
  const metrics = new ProxyMetrics({ cluster: config.cluster });
  const server = new ProxyServer({ config, topology: source, metrics, logger: logger.child('server') });
  try {
    await server.start();
  } catch (error) {
    await source.stop();
    throw error;
  }
  // Say what this proxy applied, so a switchover's outgoing primary knows it holds writes.
  const presence = config.etcd !== null ? new ProxyPresencePublisher({ access: config.etcd, cluster: config.cluster, logger: logger.child('presence') }) : null;
  const unfollow = presence !== null ? followPresence(server, presence) : () => undefined;
  let http: Server | null = null;
  if (config.metrics !== null) {
    try {
      http = await serveProxyHttp(metrics, config.metrics.host, config.metrics.port, () => server.health());
    } catch (error) {
      unfollow();
      await presence?.stop();
      await server.stop();
      await source.stop();
      throw error;
    }
  }
  const address = http?.address();
  const httpAddress = address !== undefined && address !== null && typeof address !== 'string' ? { host: address.address, port: address.port } : null;
  let stopped: Promise<void> | null = null;
  return {
    server,
    metrics,
    httpAddress,
    stop(): Promise<void> {
      stopped ??= (async () => {
        const h = http;
        if (h !== null) {
          await new Promise<void>((resolve) => {
            h.close(() => resolve());
            h.closeAllConnections();
          });
        }
        unfollow();
        await presence?.stop();
        await server.stop();
        await source.stop();
      })();
      return stopped;
    },
  };
}
