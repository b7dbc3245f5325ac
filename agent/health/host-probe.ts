/**
 * "Is the host there?" — separate from "is Dolt answering?", so that a dead Dolt on a live host
 * (restart it) is told apart from an unreachable host (fail over). ICMP echo through net-ping
 * needs a raw socket (root or CAP_NET_RAW); without one, the probe falls back to a TCP connect
 * to a port known to listen there, and says so once in the log.
 */

import * as net from 'node:net';
import type { Logger } from '../../common/logger';

export interface ProbeResult {
  reachable: boolean;
  method: 'icmp' | 'tcp';
  latencyMs: number | null;
  error: string | null;
}

export interface ProbeTarget {
  host: string;
  /** Used by the TCP fallback. */
  port: number;
}

type PingModule = typeof import('net-ping');

export class HostProbe {
  private icmp: import('net-ping').PingSession | null | undefined;
  private fallbackLogged = false;

  constructor(private readonly logger: Logger, private readonly timeoutMs = 1000) {}

  private icmpSession(): import('net-ping').PingSession | null {
    if (this.icmp !== undefined) return this.icmp;
    try {
      // Loaded lazily: the native raw-socket addon is only needed where ICMP is allowed.
      const ping = require('net-ping') as PingModule;
      this.icmp = ping.createSession({ retries: 0, timeout: this.timeoutMs });
      this.icmp.on('error', (error) => this.disableIcmp(error?.message ?? 'socket error'));
    } catch (error) {
      this.disableIcmp((error as Error).message);
    }
    return this.icmp ?? null;
  }

  private disableIcmp(why: string): void {
    if (this.icmp) {
      try {
        this.icmp.close();
      } catch {
        // closing a broken session may throw; it is being dropped anyway
      }
    }
    this.icmp = null;
    if (!this.fallbackLogged) {
      this.fallbackLogged = true;
      this.logger.warn('ICMP ping unavailable (raw sockets not permitted?); host checks fall back to TCP connect', { why });
    }
  }

  async probe(target: ProbeTarget): Promise<ProbeResult> {
    const session = this.icmpSession();
    if (session) {
      let why = 'ICMP send not permitted';
      const result = await new Promise<ProbeResult | null>((resolve) => {
        const started = Date.now();
        // net-ping's own timeout should answer; if its callback never comes, the agent's loop
        // must not wait on it: fall back to TCP instead (seen once under load in CI).
        const stuck = setTimeout(() => {
          why = `no ICMP callback within ${2 * this.timeoutMs} ms`;
          resolve(null);
        }, 2 * this.timeoutMs);
        const settle = (value: ProbeResult | null): void => {
          clearTimeout(stuck);
          resolve(value);
        };
        try {
          session.pingHost(target.host, (error) => {
            if (!error) settle({ reachable: true, method: 'icmp', latencyMs: Date.now() - started, error: null });
            else if (/Operation not permitted|EPERM|EACCES/i.test(error.message)) settle(null);
            else settle({ reachable: false, method: 'icmp', latencyMs: null, error: error.message });
          });
        } catch (error) {
          why = (error as Error).message;
          settle(null);
        }
      });
      if (result) return result;
      this.disableIcmp(why);
    }
    return tcpProbe(target, this.timeoutMs);
  }

  close(): void {
    if (this.icmp) this.icmp.close();
    this.icmp = null;
  }
}

export function tcpProbe(target: ProbeTarget, timeoutMs: number): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const started = Date.now();
    const socket = net.connect({ host: target.host, port: target.port });
    const done = (result: ProbeResult): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(() => done({ reachable: false, method: 'tcp', latencyMs: null, error: `no TCP answer within ${timeoutMs} ms` }), timeoutMs);
    socket.once('connect', () => done({ reachable: true, method: 'tcp', latencyMs: Date.now() - started, error: null }));
    socket.once('error', (error: NodeJS.ErrnoException) => {
      // Refused means a live host with nothing on that port: the host IS reachable.
      if (error.code === 'ECONNREFUSED') done({ reachable: true, method: 'tcp', latencyMs: Date.now() - started, error: null });
      else done({ reachable: false, method: 'tcp', latencyMs: null, error: error.message });
    });
  });
}
