/**
 * A login verdict (the handshake's, or a COM_CHANGE_USER's) passes through the server's gate
 * before the client hears it: the throttle (login-throttle.ts) may hold it, and it counts toward
 * the throttle.
 */

import { setTimeout as sleep } from 'node:timers/promises';
import type { ProxyUser } from '../config';
import { AccessDeniedError } from './errors';

/** The throttle as one client (one address) sees it. */
export interface LoginGate {
  /** How long to hold the verdict of an attempt as `username` (ms). */
  holdFor(username: string): number;
  failed(username: string): void;
  succeeded(username: string): void;
}

/**
 * The authentication's outcome once the hold has passed. A failure is counted before the hold,
 * so attempts running side by side see each other's failures; success and failure are held
 * alike, so hanging up early tells a guesser nothing.
 */
export async function heldVerdict(gate: LoginGate, username: string, authentication: Promise<ProxyUser>): Promise<ProxyUser> {
  let user: ProxyUser | null = null;
  let failure: unknown = null;
  try {
    user = await authentication;
  } catch (error) {
    failure = error;
  }
  const holdMs = gate.holdFor(username);
  if (failure instanceof AccessDeniedError) gate.failed(username);
  if (holdMs > 0) await sleep(holdMs);
  if (user === null) throw failure;
  gate.succeeded(username);
  return user;
}
