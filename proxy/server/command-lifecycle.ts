/**
 * One owner for the life of a client's command: the session's phase, the command in flight, what
 * the client is owed, and the one exit through which every command ends.
 *
 *   handshake ──logged-in──▶ idle ◀─────────────── done ───────────────┐
 *                             │ set-up        ┌─▶ setup ───────────────┤
 *                             ├───────────────┘     │ send-rest/await/discard
 *                             │ send-rest ─▶ sending ┤                  │
 *                             │ await ────▶ awaiting ┼──────────────────┤
 *                             │ discard ──▶ discarding ─────────────────┤
 *                             │ change-user ▶ auth ────────────────────┘
 *   awaiting ──upload──▶ uploading ──await──▶ awaiting   (LOAD DATA LOCAL: the client's file,
 *                        uploading ──discard─▶ discarding  relayed until its empty packet)
 *   awaiting ──set-up──▶ setup   (a read lost before any answer reached the client: sent again)
 *   any ──close──▶ closed (absorbing: a late callback of a closed session finds nothing to do)
 *
 * `nextPhase` is the whole table, a switch over (phase, event) with the reason for each move; a
 * move it does not list is a BUG — the session no longer knows what the client or the backend
 * expects next, so it is counted (`doltgate_proxy_command_phase_bugs_total`) and the session
 * closed rather than guessed at.
 *
 * Invariants the class keeps:
 * - `inflight` is set only in sending/awaiting (a command on a backend connection), and is ended
 *   in exactly one place, `detach`, which also gives its replica slot back to the selector;
 * - every command ends through `end()` (in-flight detached, phase idle, the client's sequence
 *   reset, the next waiting frames read), also the ones the proxy answers itself.
 *
 * The hot path is one `nextPhase` switch per move: no allocation, no promise.
 */

import type { Inflight } from './command-job';

export const enum Phase {
  /** Logging in (client-handshake.ts owns the socket). */
  Handshake,
  /** Waiting for the client's next command. */
  Idle,
  /** Async work before a command can be sent or answered (connect, replay, write hold, outcome lookup). */
  Setup,
  /** The first frame of a command over 16 MiB went to the backend; the rest is forwarded as it comes. */
  Sending,
  /** The whole command went to the backend; its response is on its way. */
  Awaiting,
  /** The rest of a multi-frame command that will not run is skipped; its ERR goes out after it. */
  Discarding,
  /** A COM_CHANGE_USER exchange: the client's packets go to the authenticator. */
  Auth,
  /** The server asked for the file a LOAD DATA LOCAL named: the client's packets are that file. */
  Uploading,
  Closed,
}

export const enum CommandEvent {
  LoggedIn,
  SetUp,
  SendRest,
  Await,
  Discard,
  ChangeUser,
  Done,
  Upload,
  Close,
}

/** Names for logs, `describe()` and metric labels, by number. */
export const PHASE_NAMES: readonly string[] = ['handshake', 'idle', 'setup', 'sending', 'awaiting', 'discarding', 'auth', 'uploading', 'closed'];
export const EVENT_NAMES: readonly string[] = ['logged-in', 'set-up', 'send-rest', 'await', 'discard', 'change-user', 'done', 'upload', 'close'];

/** `nextPhase`'s answer for a move the table does not allow. */
export const BUG = -1;

/** The phase after `event` in `phase`, or BUG. Pure; the table is the documentation. */
export function nextPhase(phase: Phase, event: CommandEvent): Phase | typeof BUG {
  // Closing is always possible, and closed stays closed whatever arrives late.
  if (event === CommandEvent.Close || phase === Phase.Closed) return Phase.Closed;
  switch (phase) {
    case Phase.Handshake:
      // Nothing is read as a command before the login succeeded.
      return event === CommandEvent.LoggedIn ? Phase.Idle : BUG;
    case Phase.Idle:
      switch (event) {
        case CommandEvent.SetUp: // no ready connection, or the proxy answers after async work
          return Phase.Setup;
        case CommandEvent.SendRest: // first frame of a large command sent on a ready connection
          return Phase.Sending;
        case CommandEvent.Await: // the whole command sent on a ready connection (the hot path)
          return Phase.Awaiting;
        case CommandEvent.Discard: // refused before its last frame arrived
          return Phase.Discarding;
        case CommandEvent.ChangeUser:
          return Phase.Auth;
        case CommandEvent.Done: // answered by the proxy itself, or sent with no response due
          return Phase.Idle;
        default:
          return BUG;
      }
    case Phase.Setup:
      switch (event) {
        case CommandEvent.SendRest:
          return Phase.Sending;
        case CommandEvent.Await:
          return Phase.Awaiting;
        case CommandEvent.Discard: // setup failed before the command's last frame arrived
          return Phase.Discarding;
        case CommandEvent.Done: // failed in setup and answered, or answered by the proxy
          return Phase.Idle;
        default: // one setup at a time: the client is not read while it runs
          return BUG;
      }
    case Phase.Sending:
      switch (event) {
        case CommandEvent.Await: // its last frame went out
          return Phase.Awaiting;
        case CommandEvent.Discard: // the backend was lost mid-command: the rest goes nowhere
          return Phase.Discarding;
        case CommandEvent.Done: // its last frame went out and it has no response (long data)
          return Phase.Idle;
        default:
          return BUG;
      }
    case Phase.Awaiting:
      if (event === CommandEvent.Upload) return Phase.Uploading; // the server asked for the named file
      // A read outside a transaction lost with its connection before any of its answer reached the
      // client: sent again on another connection (command-forwarder.ts resendsRead).
      if (event === CommandEvent.SetUp) return Phase.Setup;
      return event === CommandEvent.Done ? Phase.Idle : BUG; // the response ended
    case Phase.Uploading:
      switch (event) {
        case CommandEvent.Await: // the client's empty packet ended the file: the server answers next
          return Phase.Awaiting;
        case CommandEvent.Discard: // the backend was lost mid-file: the rest goes nowhere
          return Phase.Discarding;
        default: // the command cannot end while the client is still sending its file
          return BUG;
      }
    case Phase.Discarding:
    case Phase.Auth:
      // Each of these ends only one way: the last frame, the verdict.
      return event === CommandEvent.Done ? Phase.Idle : BUG;
    default:
      return BUG;
  }
}

/** What the lifecycle needs of the session that reads the client. */
export interface LifecycleOwner {
  /** The client's next packet carries sequence id `seq` (0: it starts a new exchange). */
  resetClientSequence(seq: number): void;
  /** Read the client frames waiting, if the phase reads any. */
  pump(): void;
  /** An impossible move: count it, log it and close the session. */
  bug(phase: Phase, event: CommandEvent): void;
}

/** The part of the replica selector a command in flight holds: one outstanding slot. */
export interface ReplicaSlots {
  end(replica: string): void;
}

export class CommandLifecycle {
  private current: Phase = Phase.Handshake;
  /** The command on a backend connection now (sending or awaiting), or null. */
  private running: Inflight | null = null;
  /** An ERR the client is owed for something lost while it was idle; answers its next command. */
  owed: Error | null = null;
  /** What a command being discarded gets once its last frame arrived (null: no answer). */
  discardReply: Error | null = null;
  /** The frames being discarded are a file upload's: they end with an empty packet. */
  discardsUpload = false;

  constructor(
    private readonly slots: ReplicaSlots,
    private readonly owner: LifecycleOwner,
  ) {}

  get phase(): Phase {
    return this.current;
  }

  get inflight(): Inflight | null {
    return this.running;
  }

  /** A method, not a getter: TypeScript must not narrow it across awaits. */
  isClosed(): boolean {
    return this.current === Phase.Closed;
  }

  /** Whether the client's frames are read now (else they wait in the reader; see flow-control.ts). */
  readsClient(): boolean {
    const p = this.current;
    return p === Phase.Idle || p === Phase.Sending || p === Phase.Discarding || p === Phase.Auth || p === Phase.Uploading;
  }

  /** Applies `event`; false when the session is closed or the move was a BUG (then it is closing). */
  move(event: CommandEvent): boolean {
    const from = this.current;
    const to = nextPhase(from, event);
    if (to === BUG) {
      this.owner.bug(from, event);
      return false;
    }
    this.current = to;
    return to !== Phase.Closed || event === CommandEvent.Close;
  }

  /** The command went to a backend connection: it is in flight until `detach`. */
  begin(f: Inflight): void {
    this.running = f;
  }

  /**
   * Ends the in-flight command's hold on its backend (the only place that does): it is no longer
   * the one a backend frame or loss belongs to, and its replica slot is given back. Returns it.
   */
  detach(): Inflight | null {
    const f = this.running;
    if (f === null) return null;
    this.running = null;
    if (f.replica !== null) this.slots.end(f.replica);
    return f;
  }

  /**
   * The first frame of a command over 16 MiB went out: its other frames are read and forwarded
   * now — also when it went out after async setup, with those frames already waiting.
   */
  sendRest(): void {
    if (this.move(CommandEvent.SendRest)) this.owner.pump();
  }

  /**
   * The server asked for the file the LOAD DATA LOCAL named, and the request went to the client:
   * its next packets, from sequence id `seq`, are the file.
   */
  upload(seq: number): void {
    if (!this.move(CommandEvent.Upload)) return;
    this.owner.resetClientSequence(seq);
    this.owner.pump();
  }

  /** The one exit: the command is over, whoever answered it; the client's next frames are read. */
  end(): void {
    this.detach();
    if (!this.move(CommandEvent.Done)) return;
    this.discardsUpload = false;
    this.owner.resetClientSequence(0);
    this.owner.pump();
  }

  /**
   * Skip the rest of the current multi-frame command — or, while uploading, the rest of the
   * client's file — then answer it with `reply` (null: nothing).
   */
  discardRest(reply: Error | null): void {
    const uploading = this.current === Phase.Uploading;
    this.detach();
    this.discardReply = reply;
    if (!this.move(CommandEvent.Discard)) return;
    this.discardsUpload = uploading;
    this.owner.pump();
  }

  /** The last frame of a discarded command arrived: its answer, if any (the caller writes it, then `end()`). */
  takeDiscardReply(): Error | null {
    const reply = this.discardReply;
    this.discardReply = null;
    return reply;
  }

  /** The owed ERR, now being delivered. */
  takeOwed(): Error | null {
    const owed = this.owed;
    this.owed = null;
    return owed;
  }
}
