/**
 * How agents, proxies and the CLI reach etcd: endpoints, TLS (a CA to verify etcd's certificate
 * by, and a client certificate when etcd demands one) and etcd's user/password authentication.
 * One shape for all three, read from their configs (`etcd:` in agent.yaml and proxy.yaml, flags
 * and DOLTGATE_ETCD_* for the CLI), and one function that turns it into etcd3 client options.
 */

import { readFileSync } from 'node:fs';
import type { IOptions } from 'etcd3';

export interface EtcdTls {
  /** PEM file of the CA etcd's server certificate must chain to. */
  caFile: string;
  /** PEM files of this client's certificate and key, for etcd with --client-cert-auth. */
  certFile: string | null;
  keyFile: string | null;
}

export interface EtcdAccess {
  endpoints: string[];
  tls: EtcdTls | null;
  /** etcd user/password authentication (etcd `auth enable`); null: none. */
  auth: { user: string; password: string } | null;
}

export const openEtcdAccess = (endpoints: string[]): EtcdAccess => ({ endpoints, tls: null, auth: null });

/** etcd3 client options for `access` (files are read now, so a bad path fails at start-up). */
export function etcd3Options(access: EtcdAccess, extra: Omit<IOptions, 'hosts' | 'credentials' | 'auth'> = {}): IOptions {
  const options: IOptions = { ...extra, hosts: [...access.endpoints] };
  if (access.tls !== null) {
    options.credentials = {
      rootCertificate: readFileSync(access.tls.caFile),
      ...(access.tls.certFile !== null ? { certChain: readFileSync(access.tls.certFile) } : {}),
      ...(access.tls.keyFile !== null ? { privateKey: readFileSync(access.tls.keyFile) } : {}),
    };
  }
  if (access.auth !== null) {
    // The password-for-token exchange gets a deadline of its own: without one, an exchange begun
    // while etcd is down can hang forever, and every later call waits behind it (seen after an
    // etcd restart, which also invalidates every token: the client then logs in again).
    const limit = typeof extra.dialTimeout === 'number' ? extra.dialTimeout : 2000;
    options.auth = { username: access.auth.user, password: access.auth.password, callOptions: () => ({ deadline: Date.now() + limit }) };
  }
  return options;
}

/** The keys of an `etcd:` section besides `endpoints` (and the agent's `call_timeout_ms`). */
export const ETCD_ACCESS_KEYS = ['ca_file', 'cert_file', 'key_file', 'user', 'password', 'password_env'] as const;

/**
 * TLS and auth from an `etcd:` config section. `resolve` makes a path absolute (configs resolve
 * against their own folder); `fail` throws the config's error for a path. The password comes
 * inline or, better, from the environment variable `password_env` names.
 */
export function parseEtcdAccess(
  raw: Record<string, unknown>,
  endpoints: string[],
  options: { section: string; env: NodeJS.ProcessEnv; resolve: (path: string) => string; fail: (path: string, message: string) => never },
): EtcdAccess {
  const { section, env, resolve, fail } = options;
  const str = (key: string): string | null => {
    const value = raw[key];
    if (value === undefined || value === null) return null;
    if (typeof value !== 'string' || value === '') return fail(`${section}.${key}`, 'must be a non-empty string');
    return value;
  };
  const ca = str('ca_file');
  const cert = str('cert_file');
  const key = str('key_file');
  if ((cert === null) !== (key === null)) fail(`${section}.cert_file`, 'and key_file go together (the client certificate and its key)');
  if (cert !== null && ca === null) fail(`${section}.ca_file`, 'is needed with a client certificate (the CA etcd is verified by)');
  const https = endpoints.some((e) => e.startsWith('https://'));
  if (ca !== null && !endpoints.every((e) => e.startsWith('https://'))) fail(`${section}.endpoints`, 'must all be https:// URLs when ca_file is set');
  if (https && ca === null) fail(`${section}.ca_file`, 'is needed for https:// endpoints (the CA etcd is verified by)');
  const tls = ca === null ? null : { caFile: resolve(ca), certFile: cert === null ? null : resolve(cert), keyFile: key === null ? null : resolve(key) };
  const user = str('user');
  let password = str('password');
  const passwordEnv = str('password_env');
  if (passwordEnv !== null) {
    const value = env[passwordEnv];
    if (value === undefined || value === '') return fail(`${section}.password_env`, `names ${passwordEnv}, which is not set in the environment`);
    password = value;
  }
  if ((user === null) !== (password === null)) fail(`${section}.user`, 'and password (or password_env) go together');
  return { endpoints, tls, auth: user === null ? null : { user, password: password as string } };
}
