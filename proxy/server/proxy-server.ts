/**
 * The proxy's MySQL listener: accepts client connections (up to max_client_connections; the next
 * one gets ER_CON_COUNT_ERROR 1040 as its first packet and is closed), gives each a ClientSession,
 * and owns what sessions share: the ClusterView (routing table built from the TopologySource), the
 * write hold, the replica selector, the backend pools, the auth state (users, RSA key), TLS
 * contexts, and ONE coarse timer that drives handshake, idle and query timeouts, pool expiry and
 * the gauges (no timer per connection or per query).
 *
 * Following the cluster: every topology the source applies goes through ClusterView.apply; when
 * the primary's connections are retired (failover, switchover, a new primary) every session is
 * told at once, idle pooled connections to the old primary are closed, and the write hold is
 * begun or ended. A node whose address or role changed loses its pooled connections.
 *
 * Capabilities offered to clients: what the proxy can forward untouched (PROXY_SUPPORTED_CAPABILITIES)
 * and Dolt offers (measured on Dolt 1.86.4: no SESSION_TRACK, no QUERY_ATTRIBUTES, no
 * PS_MULTI_RESULTS, DEPRECATE_EOF yes), minus LOCAL_FILES (offered only when a user may relay files), plus
 * what the proxy's own handshake provides (plugin auth, connect attributes, CLIENT_SSL with TLS).
 * A backend that lacks a packet-shaping capability a client negotiated is refused at login with a
 * clear error rather than forwarded into a corrupt stream.
 *
 * The proxy never crashes on a client: every socket has an error handler, every promise chain
 * ends in a handler, and a failing session closes only itself.
 */

import { OutcomeTokens } from './outcome-token';
import { performance } from 'node:perf_hooks';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { readFileSync } from 'node:fs';
import type { Logger } from '../../common/logger';
import type { Topology } from '../../proto';
import type { PresenceState } from '../cluster/proxy-presence-publisher';
import type { TopologySource } from '../cluster/topology-source';
import type { ProxyConfig, ProxyUser } from '../config';
import { WriteHold } from '../hold/write-hold';
import { Capability, PROXY_SUPPORTED_CAPABILITIES } from '../protocol';
import type { ProxyMetrics } from '../proxy-metrics';
import { routineNames, type ClassifierOptions } from '../routing/classifier';
import { ReplicaSelector } from '../routing/replica-selector';
import type { BackendLogin, BackendTarget } from './backend-connection';
import { BackendPools } from './backend-pool';
import { ClientAuthenticator, generateRsaKeys } from './client-auth';
import type { ClientHandshakeSettings } from './client-handshake';
import { ClientSession } from './client-session';
import type { SessionContext } from './session-context';
import { ProxyMemoryBudget } from './session-memory';
import { ClusterView } from './cluster-view';
import { PrimaryProber } from './primary-prober';
import { errFrameForError, HandshakeSlotsFullError, TooManyConnectionsError } from './errors';
import { clientAddressOf, HandshakeSlots } from './handshake-slots';
import { LoginThrottle, RateBucket } from './login-throttle';
import type { LoginGate } from './login-verdict';

/** Server capabilities of Dolt 1.86.4 (its HandshakeV10), the default until told otherwise. */
export const DOLT_SERVER_CAPABILITIES = 0x013ba28f;

/** What the proxy's own connection phase provides, whatever the backend. */
const HANDSHAKE_CAPABILITIES: number =
  (Capability.CLIENT_PROTOCOL_41 |
    Capability.CLIENT_SECURE_CONNECTION |
    Capability.CLIENT_PLUGIN_AUTH |
    Capability.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA |
    Capability.CLIENT_CONNECT_ATTRS |
    Capability.CLIENT_CONNECT_WITH_DB) >>>
  0;

export function offeredCapabilities(backendCapabilities: number): number {
  const forwarded = PROXY_SUPPORTED_CAPABILITIES & backendCapabilities & ~(Capability.CLIENT_LOCAL_FILES | Capability.CLIENT_SSL | Capability.CLIENT_QUERY_ATTRIBUTES);
  return (forwarded | HANDSHAKE_CAPABILITIES) >>> 0;
}

export interface ProxyServerOptions {
  config: ProxyConfig;
  topology: TopologySource;
  metrics: ProxyMetrics;
  logger: Logger;
  /** Dolt's server capabilities, if known to differ from DOLT_SERVER_CAPABILITIES. */
  backendCapabilities?: number;
  serverVersion?: string;
  /**
   * The clock of every timeout (handshake, idle, query, login throttling); default
   * performance.now. A test that injects one also passes `manualTicks` and calls `tick()` itself.
   */
  now?: () => number;
  /** No timer: the sessions' timeouts are checked only when `tick()` is called (tests). */
  manualTicks?: boolean;
}

export class ProxyServer {
  private readonly config: ProxyConfig;
  private readonly logger: Logger;
  private readonly metrics: ProxyMetrics;
  private readonly source: TopologySource;
  readonly hold: WriteHold;
  readonly view: ClusterView;
  readonly pools: BackendPools;
  private readonly sessions = new Set<ClientSession>();
  private readonly appliedListeners = new Set<() => void>();
  private readonly sessionsById = new Map<number, ClientSession>();
  /** Sessions past login; max_client_connections bounds these alone. */
  private readonly loggedIn = new Set<ClientSession>();
  /** Sessions still logging in, bounded apart (handshake-slots.ts). */
  private readonly handshaking: HandshakeSlots<ClientSession>;
  private readonly throttle: LoginThrottle;
  private readonly userNames: ReadonlySet<string>;
  private readonly now: () => number;
  private readonly manualTicks: boolean;
  private readonly startedAt: number;
  private questions = 0;
  private server: net.Server | null = null;
  private timer: NodeJS.Timeout | null = null;
  private unsubscribe: (() => void) | null = null;
  private nextConnectionId = 1;
  private stopping = false;
  private readonly logins = new Map<ProxyUser, BackendLogin>();
  private readonly offered: number;
  private readonly serverVersion: string;
  private secureContext: tls.SecureContext | null = null;
  private authenticator: ClientAuthenticator | null = null;
  private readonly classifier: [ClassifierOptions, ClassifierOptions];
  private readonly context: SessionContext<ClientSession>;
  private readonly prober: PrimaryProber;
  private unsubscribeLeader: (() => void) | null = null;

  constructor(options: ProxyServerOptions) {
    const c = options.config;
    this.now = options.now ?? (() => performance.now());
    this.manualTicks = options.manualTicks ?? false;
    this.startedAt = this.now();
    this.config = c;
    this.logger = options.logger;
    this.metrics = options.metrics;
    this.source = options.topology;
    this.hold = new WriteHold({ maxHeld: c.hold.maxHeld, timeoutMs: c.hold.timeoutMs, maxEpisodeMs: c.hold.maxEpisodeMs });
    this.handshaking = new HandshakeSlots<ClientSession>(
      { max: c.login.maxHandshaking, maxPerAddress: c.login.maxHandshakingPerAddress, minEvictableWaitMs: c.login.minEvictableWaitMs },
      (s) => s.handshakeWaitingSince(),
    );
    this.userNames = new Set(c.users.map((u) => u.name));
    this.throttle = new LoginThrottle({
      userThreshold: c.login.failedUserThreshold,
      addressThreshold: c.login.failedAddressThreshold,
      stepMs: c.login.failedDelayStepMs,
      maxDelayMs: c.login.maxFailedDelayMs,
      forgetAfterMs: c.login.forgetFailuresAfterMs,
      maxTracked: 100_000,
    });
    this.view = new ClusterView(new ReplicaSelector(c.routing.strategy), this.hold);
    // Local files are offered only when some user may relay them (local-infile.ts); who may is
    // known only after the login, so the dispatcher checks it per statement.
    const localFiles = c.users.some((u) => u.allowLocalInfile) ? Capability.CLIENT_LOCAL_FILES : 0;
    this.offered = (offeredCapabilities(options.backendCapabilities ?? DOLT_SERVER_CAPABILITIES) | localFiles) >>> 0;
    this.serverVersion = options.serverVersion ?? '8.0.33-doltgate';
    const base = { readOnlyProcedures: routineNames(c.routing.readOnlyProcedures), writeFunctions: routineNames(c.routing.writeFunctions) };
    this.classifier = [Object.freeze({ ...base, noBackslashEscapes: false }), Object.freeze({ ...base, noBackslashEscapes: true })];
    this.pools = new BackendPools({
      maxConnectionsPerNode: c.pool.maxConnectionsPerNode,
      queueTimeoutMs: c.pool.queueTimeoutMs,
      maxQueued: c.pool.maxQueued,
      maxIdlePerBackend: c.pool.maxIdlePerBackend,
      idleTimeoutMs: c.pool.idleTimeoutMs,
      connectTimeoutMs: c.backendConnectTimeoutMs,
      maxPacketSize: c.maxAllowedPacket,
      tls: c.backendTls === null
        ? null
        : {
            ca: c.backendTls.caFile !== null ? readFileSync(c.backendTls.caFile) : undefined,
            rejectUnauthorized: c.backendTls.rejectUnauthorized,
            servername: c.backendTls.serverName ?? undefined,
          },
      onHealth: (target, up, error) => this.onBackendHealth(target, up, error),
      onBudgetExhausted: (node) => this.metrics.backendBudgetExhausted.inc({ backend: node }),
      onQueueWait: (node, ms, outcome) => this.metrics.backendQueueWait.observe({ backend: node, outcome }, ms / 1000),
    });
    const hold = this.hold;
    this.metrics.observeHold(() => hold.stats);
    const sessions = this.sessions;
    this.metrics.observeBackends(() => this.pools.stats(), function* () {
      for (const s of sessions) yield s.holdReason();
    });
    this.prober = new PrimaryProber(this.view, this.pools, this.logger.child('probe'));
    this.view.onSuspicion = (suspicion) => {
      if (suspicion !== null) {
        this.metrics.primarySuspicions.inc({ kind: suspicion.kind });
        this.logger.warn('holding writes: the primary was seen failing', { kind: suspicion.kind, reason: suspicion.reason });
      }
      this.prober.follow(suspicion);
    };
    const self = this;
    this.context = {
      config: c,
      view: this.view,
      pools: this.pools,
      memoryBudget: new ProxyMemoryBudget(c.sessionLimits.totalBytes),
      get authenticator(): ClientAuthenticator {
        return self.authenticator as ClientAuthenticator;
      },
      metrics: this.metrics,
      logger: this.logger,
      handshakeSettings: (session) => this.handshakeSettings(session),
      loginGate: (address) => this.loginGate(address),
      classifierOptions: (noBackslashEscapes) => this.classifier[noBackslashEscapes ? 1 : 0],
      loginFor: (user) => this.loginFor(user),
      sessionClosed: (session) => this.sessionClosed(session),
      findSession: (id) => this.sessionsById.get(id),
      statistics: () => this.statistics(),
      countQuestion: () => {
        this.questions++;
      },
      now: () => this.now(),
      outcomeTokens: c.outcomeTokens ? new OutcomeTokens() : null,
    };
  }

  /** Loads TLS material and the RSA key, applies the current topology, starts listening. */
  async start(): Promise<void> {
    const c = this.config;
    if (c.tls !== null) {
      this.secureContext = tls.createSecureContext({ cert: readFileSync(c.tls.certFile), key: readFileSync(c.tls.keyFile) });
    }
    const rsaBudget = new RateBucket(c.login.rsaExchangesPerSecond, c.login.rsaExchangesPerSecond, this.now());
    this.authenticator = new ClientAuthenticator(c.users, c.defaultAuthPlugin, await generateRsaKeys(), rsaBudget);

    const initial = this.source.current().topology;
    if (initial !== null) this.onTopology(initial, null);
    else this.hold.begin('no topology received yet');
    this.unsubscribe = this.source.onChange((next, previous) => {
      try {
        this.onTopology(next, previous);
      } catch (error) {
        this.logger.error('applying a topology failed', { error: (error as Error).message, epoch: next.epoch });
      }
    });
    this.unsubscribeLeader = this.source.onLeaderChange?.((leader) => this.view.leaderChanged(leader)) ?? null;

    const server = net.createServer({ pauseOnConnect: false }, (socket) => this.onConnection(socket));
    server.on('error', (error) => this.logger.error('listener error', { error: error.message }));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(c.listen.port, c.listen.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.server = server;
    const tickMs = this.tickInterval();
    if (!this.manualTicks) {
      this.timer = setInterval(() => this.tick(), tickMs);
      this.timer.unref();
    }
    this.logger.info('proxy listening', { address: this.address, tls: c.tls !== null, tickMs });
  }

  get address(): { host: string; port: number } {
    const a = this.server?.address();
    if (a === null || a === undefined || typeof a === 'string') return { host: this.config.listen.host, port: this.config.listen.port };
    return { host: a.address, port: a.port };
  }

  get clientCount(): number {
    return this.sessions.size;
  }

  /** Connections still logging in (they do not count against max_client_connections). */
  get handshakingCount(): number {
    return this.handshaking.size;
  }

  /** One line per client session (connection id, user, state, how it reads), for logs and tests. */
  describeSessions(): Array<Record<string, unknown>> {
    return [...this.sessions].map((s) => s.describe());
  }

  /** Stops accepting, tells idle clients the proxy is going away, closes every connection. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.unsubscribe?.();
    this.unsubscribeLeader?.();
    this.prober.stop();
    if (this.timer !== null) clearInterval(this.timer);
    const server = this.server;
    const closed = server === null ? Promise.resolve() : new Promise<void>((resolve) => server.close(() => resolve()));
    for (const s of [...this.sessions]) s.shutdown();
    this.pools.closeAll();
    await Promise.race([closed, new Promise((resolve) => setTimeout(resolve, 2000).unref())]);
    this.logger.info('proxy stopped');
  }

  /** For /healthz: serving, and by which topology. etcd being unreachable is reported, not fatal. */
  health(): { ok: boolean; detail: unknown } {
    const tv = this.source.current();
    const t = tv.topology;
    const warnings: string[] = [];
    if (!tv.etcdReachable) warnings.push(t === null ? 'etcd unreachable and no topology yet' : `etcd unreachable: routing by the last topology (epoch ${t.epoch})`);
    if (t === null) warnings.push('no topology: writes are held and reads have nowhere to go');
    else if (t.state !== 'stable') warnings.push(`${t.state} in progress: writes are held`);
    return {
      ok: this.server !== null && !this.stopping && t !== null,
      detail: {
        listening: this.server !== null ? `${this.address.host}:${this.address.port}` : null,
        clients: this.sessions.size,
        topology: t === null ? null : { epoch: t.epoch, state: t.state, primary: t.primary, reason: t.reason },
        source: tv.source,
        etcdReachable: tv.etcdReachable,
        lastUpdateAt: tv.lastUpdateAt === null ? null : new Date(tv.lastUpdateAt).toISOString(),
        hold: this.hold.describe(),
        replicas: this.view.selector.status(this.now()),
        warnings,
      },
    };
  }

  private onConnection(socket: net.Socket): void {
    socket.on('error', () => undefined); // the session installs its own; this one covers the gap
    if (this.stopping) {
      socket.destroy();
      return;
    }
    const address = clientAddressOf(socket);
    const now = this.now();
    const room = this.handshaking.makeRoom(address, now);
    if (!room.admit) {
      const l = this.config.login;
      const detail = room.reason === 'address_full' ? `login.max_handshaking_per_address is ${l.maxHandshakingPerAddress}, from ${address}` : `login.max_handshaking is ${l.maxHandshaking}`;
      this.metrics.connectionsRejected.inc({ reason: room.reason === 'address_full' ? 'handshakes_full_address' : 'handshakes_full' });
      socket.end(errFrameForError(0, new HandshakeSlotsFullError(detail)));
      setTimeout(() => socket.destroy(), 1000).unref();
      return;
    }
    room.evicted?.evictHandshake(now);
    const id = this.nextConnectionId;
    this.nextConnectionId = this.nextConnectionId >= 0xffffffff ? 1 : this.nextConnectionId + 1;
    const session = new ClientSession(socket, id, this.context);
    this.handshaking.add(address, session);
    this.sessions.add(session);
    this.sessionsById.set(id, session);
    this.metrics.clientConnections.set(this.sessions.size);
    this.metrics.handshakingConnections.set(this.handshaking.size);
    session.start();
  }

  /** A session proved its password: it leaves the handshake table and needs a logged-in slot. */
  private admitLogin(session: ClientSession): Error | null {
    this.handshaking.release(session.clientAddress, session);
    this.metrics.handshakingConnections.set(this.handshaking.size);
    if (this.loggedIn.size >= this.config.maxClientConnections) {
      this.metrics.connectionsRejected.inc({ reason: 'too_many_connections' });
      return new TooManyConnectionsError(this.config.maxClientConnections);
    }
    this.loggedIn.add(session);
    return null;
  }

  private loginGate(address: string): LoginGate {
    const throttle = this.throttle;
    // Names no user has share one count per address: a client inventing names (up to 64 KiB
    // each) must not make the throttle hold one entry per name; the address count covers sprays.
    const key = (user: string): string => (this.userNames.has(user) ? user : '\u0001unknown user');
    return {
      holdFor: (user) => {
        const ms = throttle.delayFor(address, key(user), this.now());
        if (ms > 0) this.metrics.loginVerdictsHeld.inc();
        return ms;
      },
      failed: (user) => throttle.recordFailure(address, key(user), this.now()),
      succeeded: (user) => throttle.recordSuccess(address, key(user)),
    };
  }

  private sessionClosed(session: ClientSession): void {
    if (this.sessionsById.get(session.connectionId) === session) this.sessionsById.delete(session.connectionId);
    this.handshaking.release(session.clientAddress, session);
    this.loggedIn.delete(session);
    this.metrics.handshakingConnections.set(this.handshaking.size);
    if (this.sessions.delete(session)) this.metrics.clientConnections.set(this.sessions.size);
  }

  /** COM_STATISTICS, in MySQL's layout, with the proxy's own figures. */
  private statistics(): string {
    const seconds = (this.now() - this.startedAt) / 1000;
    const t = this.view.topology;
    const qps = seconds > 0 ? this.questions / seconds : 0;
    return `Uptime: ${Math.floor(seconds)}  Threads: ${this.sessions.size}  Questions: ${this.questions}  Slow queries: 0  Opens: 0  Flush tables: 0  Open tables: 0  Queries per second avg: ${qps.toFixed(3)}  Topology epoch: ${t?.epoch ?? 0}  Primary: ${t?.primary ?? 'none'}  Write hold: ${this.hold.state}`;
  }

  private handshakeSettings(session: ClientSession): ClientHandshakeSettings {
    return {
      connectionId: session.connectionId,
      gate: this.loginGate(session.clientAddress),
      admitLogin: () => this.admitLogin(session),
      serverVersion: this.serverVersion,
      offeredCapabilities: this.offered,
      secureContext: this.secureContext,
      tlsRequired: this.config.tls?.required ?? false,
      authenticator: this.authenticator as ClientAuthenticator,
    };
  }

  private loginFor(user: ProxyUser): BackendLogin {
    let login = this.logins.get(user);
    if (login === undefined) {
      login = { user: user.backendUser, password: user.backendPassword };
      this.logins.set(user, login);
    }
    return login;
  }

  /**
   * What this proxy has applied, for its presence record (proto/proxy-presence.ts): the
   * topology's epoch and state, and how many sessions still hold a connection to a primary that
   * topology retired (a switchover lets their transaction or command in flight finish).
   */
  presenceState(): PresenceState | null {
    const t = this.view.topology;
    if (t === null) return null;
    let draining = 0;
    for (const s of this.sessions) if (s.holdsRetiredPrimary()) draining++;
    return { epoch: t.epoch, state: t.state, draining };
  }

  /** `listener` runs after each topology this proxy applies; returns the unsubscribe. */
  onTopologyApplied(listener: () => void): () => void {
    this.appliedListeners.add(listener);
    return () => this.appliedListeners.delete(listener);
  }

  private onTopology(next: Topology, previous: Topology | null): void {
    const before = this.view.topology;
    const oldPrimary = this.view.primary;
    const plan = this.view.apply(next, previous ?? before);
    this.metrics.topologyEpoch.set(next.epoch);
    this.logger.info('topology applied', { epoch: next.epoch, state: next.state, primary: next.primary, action: plan.primaryAction, decision: plan.reason });
    if ((plan.primaryAction === 'close' || plan.primaryAction === 'drain') && oldPrimary !== null) {
      this.pools.retireNode(oldPrimary.name);
    }
    if (plan.primaryAction === 'close' || plan.primaryAction === 'drain') {
      for (const s of this.sessions) s.onPrimaryRetired(this.view.lastChange, plan.primaryAction);
    }
    // Nodes whose address or role changed lose their pooled connections.
    if (before !== null) {
      for (const [name, node] of Object.entries(before.nodes)) {
        const now = next.nodes[name];
        if (now === undefined || now.role !== node.role || now.sql.host !== node.sql.host || now.sql.port !== node.sql.port) this.pools.retireNode(name);
      }
    }
    for (const s of this.sessions) s.onReplicasChanged();
    for (const listener of this.appliedListeners) listener();
  }

  private onBackendHealth(target: BackendTarget, up: boolean, error?: Error): void {
    const role = this.view.primary?.name === target.name ? 'primary' : 'replica';
    this.metrics.backendUp.set({ backend: target.name, role }, up ? 1 : 0);
    if (role === 'replica') {
      if (up) this.view.selector.markUp(target.name);
      else this.view.selector.markFailed(target.name, this.now());
    }
    if (!up) this.logger.warn('backend connect failed', { backend: target.name, address: `${target.host}:${target.port}`, role, error: error?.message });
  }

  private tickInterval(): number {
    const c = this.config;
    const candidates = [c.handshakeTimeoutMs, 4000];
    if (c.idleTimeoutMs > 0) candidates.push(c.idleTimeoutMs);
    if (c.queryTimeoutMs > 0) candidates.push(c.queryTimeoutMs);
    return Math.max(25, Math.min(1000, Math.floor(Math.min(...candidates) / 4)));
  }

  /** The coarse timer: every session's timeouts, the pools' idle sweep, two gauges. */
  tick(): void {
    const now = this.now();
    for (const s of [...this.sessions]) {
      try {
        s.tick(now);
      } catch (error) {
        this.logger.error('session timer failed', { ...s.describe(), error: (error as Error).message });
        s.close('internal error', false);
      }
    }
    this.pools.sweep(Date.now());
    const tv = this.source.current();
    this.metrics.etcdReachable.set(tv.source === 'static' || tv.etcdReachable ? 1 : 0);
    this.metrics.heldWrites.set(this.hold.stats.waiting);
  }
}
