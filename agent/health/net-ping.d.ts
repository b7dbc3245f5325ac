/** The part of net-ping (untyped JavaScript) that host-probe.ts uses. */
declare module 'net-ping' {
  export interface PingSession {
    pingHost(target: string, callback: (error: Error | null, target: string, sent?: Date, received?: Date) => void): void;
    close(): void;
    on(event: 'error' | 'close', listener: (error?: Error) => void): void;
  }
  export function createSession(options?: { retries?: number; timeout?: number; packetSize?: number; ttl?: number }): PingSession;
}
