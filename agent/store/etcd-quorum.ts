/**
 * Tells "etcd has no quorum" from "etcd is unreachable" after a snapshot read failed, for the
 * wait code and reason an SRE reads (`doltgate status`, the decision metric). Both make the agent
 * change nothing; only the words differ, so a probe that fails says "unreachable".
 *
 * Facts (test/integration/etcd-quorum-facts.test.ts): a member that lost its majority still
 * serves its HTTP /metrics, without etcd auth, and reports `etcd_server_has_leader 0` once its
 * election timeout passes. gRPC is no way to ask: with etcd auth on, a client must first get a
 * token, and handing one out needs the quorum that is missing.
 */

import * as http from 'node:http';
import * as https from 'node:https';
import type { IOptions } from 'etcd3';

export type EtcdUnavailability = 'no-quorum' | 'unreachable';

/** The metrics text is ~100-200 kB; more than this is not etcd's. */
const MAX_METRICS_BYTES = 8 * 1024 * 1024;

export class EtcdQuorumProbe {
  constructor(
    private readonly options: IOptions,
    private readonly timeoutMs: number,
  ) {}

  /** 'no-quorum' when some member answers that it has no leader; else 'unreachable'. */
  async explain(): Promise<EtcdUnavailability> {
    const hosts = Array.isArray(this.options.hosts) ? this.options.hosts : [this.options.hosts];
    const answers = await Promise.all(hosts.map((host) => this.hasLeader(host)));
    return answers.some((answer) => answer === false) ? 'no-quorum' : 'unreachable';
  }

  /** The member's own etcd_server_has_leader, or null when it did not say. */
  private hasLeader(endpoint: string): Promise<boolean | null> {
    const url = new URL('/metrics', endpoint.includes('://') ? endpoint : `http://${endpoint}`);
    const credentials = this.options.credentials;
    return new Promise((resolve) => {
      const onResponse = (response: http.IncomingMessage): void => {
        const chunks: Buffer[] = [];
        let size = 0;
        response.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_METRICS_BYTES) request.destroy();
          else chunks.push(chunk);
        });
        response.on('end', () => {
          const line = /^etcd_server_has_leader (\d+)$/m.exec(Buffer.concat(chunks).toString('utf8'));
          resolve(response.statusCode === 200 && line ? line[1] !== '0' : null);
        });
        response.on('error', () => resolve(null));
      };
      const request =
        url.protocol === 'https:'
          ? https.get(url, { timeout: this.timeoutMs, ca: credentials?.rootCertificate, cert: credentials?.certChain, key: credentials?.privateKey }, onResponse)
          : http.get(url, { timeout: this.timeoutMs }, onResponse);
      request.on('timeout', () => request.destroy());
      request.on('error', () => resolve(null));
    });
  }
}
