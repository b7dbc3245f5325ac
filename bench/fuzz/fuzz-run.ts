/**
 * The protocol fuzzer's run: `connections` workers against a running proxy, each taking inputs
 * from one shared budget until `inputs` are spent or `deadline` passes. An input is one mutated
 * packet (mutator.ts over seed-corpus.ts), sent either
 *
 * - before login, as a connection's handshake response (its share: `preLoginShare`), or
 * - after a real login, as a command.
 *
 * What counts as a failure, each kept with the input's hex so it can be replayed:
 * - crash: the proxy stops accepting connections (`alive()` says whether its process is gone);
 * - hang: no complete answer (or close) within `answerTimeoutMs`;
 * - wrong answer: a response a MySQL client cannot parse (bad framing, a packet the grammar
 *   does not allow), or a canary `SELECT <n>` sent between inputs that does not answer n;
 * - login bypass: an OK to a handshake whose user or proof is not the fuzz user's real one.
 * A closed connection or an ERR is a legitimate answer to garbage; the worker reconnects.
 */

import { Buffer } from 'node:buffer';
import { prng } from '../../common/prng';
import { Command, parseHandshakeResponse41, parseHandshakeV10, ResponseStep, ResponseTracker, ServerStatus } from '../../proxy/protocol';
import { FuzzConnection, frameOf, type Frame } from './fuzz-connection';
import { mutate } from './mutator';
import { commandSeeds, FUZZ_CAPABILITIES, handshakeSeeds, validProofs } from './seed-corpus';

export interface FuzzOptions {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
  seed: number;
  inputs: number;
  connections: number;
  /** Fraction of the workers that fuzz before login (each of their inputs costs a connection). */
  preLoginShare: number;
  /** Longest wait for an answer before the input counts as a hang. */
  answerTimeoutMs: number;
  /** Wall-clock end (performance.now()); Infinity for none. */
  deadline: number;
  /** True once the run must end early (Ctrl-C): no input is started after it. */
  interrupted?: () => boolean;
  /** Whether the proxy process is still running (a refused connection then is not a crash). */
  alive: () => boolean;
  onProgress?: (report: FuzzReport) => void;
  /** Called with each failure as it is found (the report keeps only the first ones). */
  onFailure?: (failure: string) => void;
}

export interface FuzzReport {
  inputs: number;
  preLogin: number;
  postLogin: number;
  /** Answers: ERR packets, OK/result sets, and connections the proxy closed. */
  errors: number;
  ok: number;
  closedByProxy: number;
  canaries: number;
  crashes: number;
  hangs: number;
  wrongAnswers: number;
  bypasses: number;
  /** The first failures, as "kind: detail (input hex)". */
  failures: string[];
  elapsedMs: number;
}

const MAX_FAILURES_KEPT = 20;
const CANARY_EVERY = 8;

type Answer = { kind: 'done'; ok: boolean; frames: Frame[] } | { kind: 'closed' } | { kind: 'hang' } | { kind: 'wrong'; detail: string };

export async function runFuzz(o: FuzzOptions): Promise<FuzzReport> {
  const started = performance.now();
  const report: FuzzReport = { inputs: 0, preLogin: 0, postLogin: 0, errors: 0, ok: 0, closedByProxy: 0, canaries: 0, crashes: 0, hangs: 0, wrongAnswers: 0, bypasses: 0, failures: [], elapsedMs: 0 };
  const seeds = commandSeeds();
  let stop = false;
  const fail = (kind: 'crash' | 'hang' | 'wrong' | 'bypass', detail: string, input: Buffer | null): void => {
    if (kind === 'crash') report.crashes++;
    else if (kind === 'hang') report.hangs++;
    else if (kind === 'wrong') report.wrongAnswers++;
    else report.bypasses++;
    const line = `${kind}: ${detail}${input === null ? '' : ` (input ${input.subarray(0, 256).toString('hex')}${input.length > 256 ? '…' : ''})`}`;
    if (report.failures.length < MAX_FAILURES_KEPT) report.failures.push(line);
    o.onFailure?.(line);
    if (kind === 'crash') stop = true;
  };
  const take = (): boolean => {
    if (o.interrupted?.() === true) stop = true;
    if (stop || report.inputs >= o.inputs || performance.now() >= o.deadline) return false;
    report.inputs++;
    return true;
  };

  let lastProgress = started;
  const progress = (): void => {
    const now = performance.now();
    if (o.onProgress !== undefined && now - lastProgress >= 10_000) {
      lastProgress = now;
      report.elapsedMs = now - started;
      o.onProgress(report);
    }
  };

  const open = async (): Promise<FuzzConnection | null> => {
    try {
      return await FuzzConnection.open(o.host, o.port, o.answerTimeoutMs);
    } catch (error) {
      if (!o.alive()) fail('crash', `the proxy is gone: ${(error as Error).message}`, null);
      else fail('hang', `no TCP connection: ${(error as Error).message}`, null);
      return null;
    }
  };

  /** A real login; the connection and the tracker's starting state, or null. */
  const login = async (): Promise<{ conn: FuzzConnection; capabilities: number } | null> => {
    const conn = await open();
    if (conn === null) return null;
    const greeting = await conn.next(o.answerTimeoutMs);
    if (greeting === null || greeting === 'timeout') {
      conn.destroy();
      fail(greeting === null ? 'crash' : 'hang', 'no greeting to a clean login', null);
      return null;
    }
    const hs = parseHandshakeV10(greeting.payload);
    const response = handshakeSeeds(o.user, o.password, hs.scramble, o.database)[0];
    conn.send(frameOf(1, response));
    const reply = await conn.next(o.answerTimeoutMs);
    if (reply === null || reply === 'timeout' || reply.payload[0] !== 0x00) {
      conn.destroy();
      fail('wrong', `a clean login was not accepted (${reply === null ? 'closed' : reply === 'timeout' ? 'no answer' : reply.payload.toString('hex').slice(0, 80)})`, null);
      return null;
    }
    const capabilities = (hs.capabilities & FUZZ_CAPABILITIES) >>> 0;
    for (const sql of ['SELECT ? + ?', 'SELECT ?']) {
      conn.send(frameOf(0, Buffer.concat([Buffer.from([Command.COM_STMT_PREPARE]), Buffer.from(sql)])));
      const a = await answer(conn, capabilities, Command.COM_STMT_PREPARE);
      if (a.kind !== 'done') {
        conn.destroy();
        return null;
      }
    }
    return { conn, capabilities };
  };

  /** Reads one whole response to `command`, judged by the same grammar a client library uses. */
  const answer = async (conn: FuzzConnection, capabilities: number, command: number): Promise<Answer> => {
    const tracker = new ResponseTracker(capabilities, ServerStatus.SERVER_STATUS_AUTOCOMMIT);
    let expects: boolean;
    try {
      expects = tracker.begin(command);
    } catch {
      // A command byte no server implements: the one answer is an ERR (or a close).
      const f = await conn.next(o.answerTimeoutMs);
      if (f === 'timeout') return { kind: 'hang' };
      if (f === null) return { kind: 'closed' };
      return f.payload[0] === 0xff ? { kind: 'done', ok: false, frames: [f] } : { kind: 'wrong', detail: `unknown command 0x${command.toString(16)} answered with 0x${f.payload.subarray(0, 8).toString('hex')}` };
    }
    if (!expects) return { kind: 'done', ok: true, frames: [] };
    const frames: Frame[] = [];
    let packet: Buffer[] = [];
    for (;;) {
      const f = await conn.next(o.answerTimeoutMs);
      if (f === 'timeout') return { kind: 'hang' };
      if (f === null) return conn.framingError !== null ? { kind: 'wrong', detail: `bad framing: ${conn.framingError.message}` } : { kind: 'closed' };
      frames.push(f);
      packet.push(f.payload);
      if (!f.endsPacket) continue;
      const whole = packet.length === 1 ? packet[0] : Buffer.concat(packet);
      packet = [];
      let step: ResponseStep;
      try {
        step = tracker.feedPayload(whole, 0, whole.length);
      } catch (error) {
        return { kind: 'wrong', detail: `a response no client can parse: ${(error as Error).message}` };
      }
      if (step === ResponseStep.Done) return { kind: 'done', ok: tracker.errno === 0, frames };
      if (step === ResponseStep.AuthData) {
        // COM_CHANGE_USER asked for more: answer with junk, which must never log anyone in.
        conn.send(frameOf((f.sequenceId + 1) & 0xff, Buffer.alloc(20, 0x5a)));
      } else if (step === ResponseStep.LocalInfile) {
        return { kind: 'wrong', detail: 'the proxy passed on a LOCAL INFILE request' };
      } else if (step === ResponseStep.UnsolicitedError) {
        return { kind: 'closed' };
      }
    }
  };

  /** `SELECT n` must answer n on a live connection; false when the connection is gone. */
  const canary = async (conn: FuzzConnection, capabilities: number, rand: () => number): Promise<boolean> => {
    const n = Math.floor(rand() * 1_000_000_000);
    report.canaries++;
    conn.send(frameOf(0, Buffer.concat([Buffer.from([Command.COM_QUERY]), Buffer.from(`SELECT ${n}`)])));
    const a = await answer(conn, capabilities, Command.COM_QUERY);
    if (a.kind === 'hang') {
      fail('hang', `canary SELECT ${n} got no answer`, null);
      return false;
    }
    if (a.kind === 'wrong') {
      fail('wrong', `canary: ${a.detail}`, null);
      return false;
    }
    if (a.kind === 'closed') return false;
    if (!a.ok) return true; // an owed error (e.g. a lost transaction) is an answer too; the next canary must pass
    const row = a.frames.find((f, i) => i >= 2 && f.payload[0] !== 0xfe && f.payload[0] !== 0xff);
    const text = row === undefined ? null : row.payload.subarray(1, 1 + row.payload[0]).toString('latin1');
    if (text !== String(n)) {
      fail('wrong', `canary SELECT ${n} answered ${JSON.stringify(text)}`, null);
      return false;
    }
    return true;
  };

  const postLoginWorker = async (rand: () => number): Promise<void> => {
    let session: { conn: FuzzConnection; capabilities: number } | null = null;
    let sinceCanary = 0;
    while (!stop) {
      if (session === null || session.conn.closed) {
        session = await login();
        if (session === null) {
          if (stop || report.inputs >= o.inputs || performance.now() >= o.deadline) return;
          await new Promise((r) => setTimeout(r, 50));
          continue;
        }
      }
      if (!take()) break;
      report.postLogin++;
      const seed = seeds[Math.floor(rand() * seeds.length)];
      const input = mutate(rand, seed, seeds);
      const framing = rand() < 0.05;
      // A few inputs break the framing itself: a wrong sequence id or a length that lies.
      let wire = frameOf(0, input);
      if (framing) {
        wire = Buffer.from(wire);
        if (rand() < 0.5) wire[3] = 1 + Math.floor(rand() * 255);
        else wire.writeUIntLE(Math.floor(rand() * 0x1000000), 0, 3);
      }
      session.conn.send(wire);
      const command = input.length > 0 ? input[0] : -1;
      const a = framing ? await drainAfterBadFrame(session.conn) : command < 0 ? await drainAfterBadFrame(session.conn) : await answer(session.conn, session.capabilities, command);
      if (a.kind === 'hang') {
        fail('hang', 'no answer', wire);
        session.conn.destroy();
        session = null;
        continue;
      }
      if (a.kind === 'wrong') {
        fail('wrong', a.detail, wire);
        session.conn.destroy();
        session = null;
        continue;
      }
      if (a.kind === 'closed') {
        report.closedByProxy++;
        session = null;
        continue;
      }
      if (a.ok && command === Command.COM_CHANGE_USER) {
        // Every COM_CHANGE_USER seed carries a junk proof, and so does every answer to its auth exchange.
        fail('bypass', 'COM_CHANGE_USER with a junk proof was accepted', wire);
        session.conn.destroy();
        session = null;
        continue;
      }
      if (a.ok) report.ok++;
      else report.errors++;
      if (++sinceCanary >= CANARY_EVERY || a.frames.length === 0) {
        sinceCanary = 0;
        if (!(await canary(session.conn, session.capabilities, rand))) {
          session.conn.destroy();
          session = null;
        }
      }
      progress();
    }
    session?.conn.destroy();
  };

  /**
   * After a frame whose header lies, the proxy either answers with an ERR and closes, waits for
   * the bytes it was promised (then the handshake of the next command sorts it out), or closes:
   * any of those is fine, so the connection is dropped either way after a short look.
   */
  const drainAfterBadFrame = async (conn: FuzzConnection): Promise<Answer> => {
    const f = await conn.next(Math.min(200, o.answerTimeoutMs));
    conn.destroy();
    if (f !== null && f !== 'timeout' && f.payload[0] !== 0xff && conn.framingError !== null) return { kind: 'wrong', detail: `bad framing: ${conn.framingError.message}` };
    return { kind: 'closed' };
  };

  const preLoginWorker = async (rand: () => number): Promise<void> => {
    while (take()) {
      report.preLogin++;
      const conn = await open();
      if (conn === null) {
        await new Promise((r) => setTimeout(r, 50));
        continue;
      }
      try {
        await oneHandshake(conn, rand);
      } finally {
        conn.destroy();
      }
      progress();
    }
  };

  const oneHandshake = async (conn: FuzzConnection, rand: () => number): Promise<void> => {
    const greeting = await conn.next(o.answerTimeoutMs);
    if (greeting === 'timeout') return fail('hang', 'no greeting', null);
    if (greeting === null) {
      report.closedByProxy++;
      return;
    }
    const hs = parseHandshakeV10(greeting.payload);
    const shapes = handshakeSeeds(o.user, o.password, hs.scramble, o.database);
    const original = shapes[Math.floor(rand() * shapes.length)];
    const input = mutate(rand, original, shapes);
    let wire = frameOf(1, input);
    if (rand() < 0.05) {
      wire = Buffer.from(wire);
      if (rand() < 0.5) wire[3] = Math.floor(rand() * 256);
      else wire.writeUIntLE(Math.floor(rand() * 0x1000000), 0, 3);
    }
    conn.send(wire);
    const proofs = validProofs(o.password, hs.scramble);
    const genuine = isGenuineLogin(input, o.user, proofs);
    let junkSent = false;
    for (;;) {
      const f = await conn.next(o.answerTimeoutMs);
      if (f === 'timeout') return fail('hang', 'no answer to a handshake response', wire);
      if (f === null) {
        report.closedByProxy++;
        return;
      }
      const first = f.payload[0];
      if (first === 0xff) {
        report.errors++;
        return;
      }
      if (first === 0x00) {
        if (!genuine || junkSent) return fail('bypass', `logged in with ${junkSent ? 'junk auth data' : 'a handshake that does not carry the real proof'}`, wire);
        report.ok++;
        return;
      }
      if (first === 0xfe || (first === 0x01 && f.payload.length === 2 && f.payload[1] === 0x04) || (first === 0x01 && f.payload.length > 2)) {
        // Auth switch, full authentication, or a public key: answer with junk, which must fail.
        junkSent = true;
        conn.send(frameOf((f.sequenceId + 1) & 0xff, Buffer.alloc(first === 0x01 && f.payload.length > 2 ? 256 : 20, 0x33)));
        continue;
      }
      if (first === 0x01 && f.payload.length === 2 && f.payload[1] === 0x03) continue; // fast auth success: an OK follows
      return fail('wrong', `a handshake answered with 0x${f.payload.subarray(0, 16).toString('hex')}`, wire);
    }
  };

  const rand = prng(o.seed);
  const workers: Promise<void>[] = [];
  const preLoginWorkers = o.preLoginShare <= 0 ? 0 : Math.max(1, Math.round(o.connections * o.preLoginShare));
  for (let i = 0; i < o.connections; i++) {
    const own = prng(Math.floor(rand() * 0xffffffff));
    workers.push(i < preLoginWorkers ? preLoginWorker(own) : postLoginWorker(own));
  }
  await Promise.all(workers);
  report.elapsedMs = performance.now() - started;
  return report;
}

/** Whether a handshake response carries the fuzz user's name and a real proof (an OK is then legitimate). */
export function isGenuineLogin(payload: Buffer, user: string, proofs: readonly Buffer[]): boolean {
  try {
    const r = parseHandshakeResponse41(payload);
    return r.username === user && proofs.some((p) => Buffer.from(r.authResponse).equals(p));
  } catch {
    return false;
  }
}
