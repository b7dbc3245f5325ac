/**
 * What a client session gets from the proxy that owns it: configuration, the routing view, the
 * backend pools, authentication, metrics and logging, and the few server-wide facts a session
 * must ask for (other sessions, for KILL; COM_STATISTICS figures; the clock).
 */

import type { OutcomeTokens } from './outcome-token';
import type { Logger } from '../../common/logger';
import type { ProxyConfig, ProxyUser } from '../config';
import type { ProxyMetrics } from '../proxy-metrics';
import type { ClassifierOptions } from '../routing/classifier';
import type { BackendLogin } from './backend-connection';
import type { ProxyMemoryBudget } from './session-memory';
import type { BackendPools } from './backend-pool';
import type { ClientAuthenticator } from './client-auth';
import type { ClientHandshakeSettings } from './client-handshake';
import type { ClusterView } from './cluster-view';
import type { LoginGate } from './login-verdict';

/**
 * `S` is the session type (client-session.ts's ClientSession): a parameter, so this file need not
 * import the session that imports it.
 */
export interface SessionContext<S = unknown> {
  readonly config: ProxyConfig;
  readonly view: ClusterView;
  readonly pools: BackendPools;
  /** What all sessions' kept state (SETs, prepared statements) may add up to. */
  readonly memoryBudget: ProxyMemoryBudget;
  readonly authenticator: ClientAuthenticator;
  readonly metrics: ProxyMetrics;
  readonly logger: Logger;
  handshakeSettings(session: S): ClientHandshakeSettings;
  /** The login throttle as a client at `address` sees it (for COM_CHANGE_USER). */
  loginGate(address: string): LoginGate;
  classifierOptions(noBackslashEscapes: boolean): ClassifierOptions;
  loginFor(user: ProxyUser): BackendLogin;
  sessionClosed(session: S): void;
  /** The live session with this proxy connection id (for KILL). */
  findSession(connectionId: number): S | undefined;
  /** The COM_STATISTICS text ("Uptime: ..."). */
  statistics(): string;
  /** One more client command answered by a backend (the Questions of COM_STATISTICS). */
  countQuestion(): void;
  /** Monotonic milliseconds. */
  now(): number;
  /** Makes outcome tokens; null when `outcome_tokens` is off. */
  readonly outcomeTokens: OutcomeTokens | null;
}
