/**
 * A command's life (proxy/server/command-lifecycle.ts): the phase table row by row — every
 * (phase, event) pair, the allowed ones with their next phase, the rest BUG — and the class's
 * invariants: the in-flight record ends in one place and gives back its replica slot, every
 * command ends through end(), a BUG closes nothing by itself but is reported, closed absorbs.
 */

import { expect } from 'chai';
import { BUG, CommandEvent, CommandLifecycle, EVENT_NAMES, nextPhase, Phase, PHASE_NAMES } from '../../proxy/server/command-lifecycle';
import type { Inflight } from '../../proxy/server/command-job';

const P = (name: string): Phase => PHASE_NAMES.indexOf(name) as Phase;
const E = (name: string): CommandEvent => EVENT_NAMES.indexOf(name) as CommandEvent;

/** The allowed moves, written out by hand: anything not here must be BUG (or closed). */
const allowed: Array<[from: string, event: string, to: string, why: string]> = [
  ['handshake', 'logged-in', 'idle', 'the login succeeded'],
  ['idle', 'set-up', 'setup', 'no ready connection, or an answer that needs async work'],
  ['idle', 'send-rest', 'sending', 'first frame of a large command on a ready connection'],
  ['idle', 'await', 'awaiting', 'the hot path: a whole command on a ready connection'],
  ['idle', 'discard', 'discarding', 'refused before its last frame arrived'],
  ['idle', 'change-user', 'auth', 'COM_CHANGE_USER'],
  ['idle', 'done', 'idle', 'answered by the proxy itself'],
  ['setup', 'send-rest', 'sending', 'a large command sent after setup'],
  ['setup', 'await', 'awaiting', 'sent after setup'],
  ['setup', 'discard', 'discarding', 'setup failed before the last frame arrived'],
  ['setup', 'done', 'idle', 'setup failed and was answered'],
  ['sending', 'await', 'awaiting', 'the last frame went out'],
  ['sending', 'discard', 'discarding', 'the backend was lost mid-command'],
  ['sending', 'done', 'idle', 'a large command with no response'],
  ['awaiting', 'done', 'idle', 'the response ended'],
  ['awaiting', 'upload', 'uploading', 'the server asked for the file the LOAD DATA LOCAL named'],
  ['awaiting', 'set-up', 'setup', 'a read lost before any of its answer reached the client is sent again'],
  ['uploading', 'await', 'awaiting', "the client's empty packet ended the file"],
  ['uploading', 'discard', 'discarding', 'the backend was lost mid-file'],
  ['discarding', 'done', 'idle', 'the last discarded frame arrived'],
  ['auth', 'done', 'idle', 'the change-user verdict'],
];

describe('command lifecycle: the phase table', () => {
  for (const [from, event, to, why] of allowed) {
    it(`${from} --${event}--> ${to} (${why})`, () => {
      expect(PHASE_NAMES[nextPhase(P(from), E(event))]).to.equal(to);
    });
  }

  it('close from every phase ends in closed', () => {
    for (const from of PHASE_NAMES) expect(nextPhase(P(from), CommandEvent.Close), from).to.equal(Phase.Closed);
  });

  it('closed absorbs every event (a late callback of a closed session)', () => {
    for (const event of EVENT_NAMES) expect(nextPhase(Phase.Closed, E(event)), event).to.equal(Phase.Closed);
  });

  it('every other pair is a BUG', () => {
    const bugs: string[] = [];
    for (const from of PHASE_NAMES) {
      if (from === 'closed') continue;
      for (const event of EVENT_NAMES) {
        if (event === 'close' || allowed.some(([f, e]) => f === from && e === event)) continue;
        if (nextPhase(P(from), E(event)) !== BUG) bugs.push(`${from} --${event}--> ${PHASE_NAMES[nextPhase(P(from), E(event))]}`);
      }
    }
    expect(bugs, 'moves the table allows but the spec above does not').to.deep.equal([]);
  });

  it('the table and its names agree in size', () => {
    expect(PHASE_NAMES).to.have.length(Phase.Closed + 1);
    expect(EVENT_NAMES).to.have.length(CommandEvent.Close + 1);
  });
});

function harness() {
  const calls: string[] = [];
  const ended: string[] = [];
  const life = new CommandLifecycle(
    { end: (replica) => ended.push(replica) },
    {
      resetClientSequence: (seq) => calls.push(seq === 0 ? 'reset' : `expect ${seq}`),
      pump: () => calls.push('pump'),
      bug: (phase, event) => calls.push(`bug ${PHASE_NAMES[phase]} ${EVENT_NAMES[event]}`),
    },
  );
  return { life, calls, ended };
}

function inflight(replica: string | null): Inflight {
  return { replica } as unknown as Inflight;
}

describe('command lifecycle: one owner, one exit', () => {
  it('end() detaches the command in flight, gives back its replica slot once, resets the client sequence and reads on', () => {
    const { life, calls, ended } = harness();
    life.move(CommandEvent.LoggedIn);
    life.begin(inflight('n2'));
    expect(life.move(CommandEvent.Await)).to.equal(true);
    life.end();
    expect(life.phase).to.equal(Phase.Idle);
    expect(life.inflight).to.equal(null);
    expect(ended).to.deep.equal(['n2']);
    expect(calls).to.deep.equal(['reset', 'pump']);
    life.end(); // a local answer next: nothing in flight, no second slot given back
    expect(ended).to.deep.equal(['n2']);
  });

  it('detach() before end() (a response that closes its connection) gives the slot back only once', () => {
    const { life, ended } = harness();
    life.move(CommandEvent.LoggedIn);
    life.begin(inflight('n3'));
    life.move(CommandEvent.Await);
    expect(life.detach()).to.not.equal(null);
    expect(life.detach()).to.equal(null);
    life.end();
    expect(ended).to.deep.equal(['n3']);
  });

  it('a primary command holds no replica slot', () => {
    const { life, ended } = harness();
    life.move(CommandEvent.LoggedIn);
    life.begin(inflight(null));
    life.move(CommandEvent.Await);
    life.end();
    expect(ended).to.deep.equal([]);
  });

  it('discardRest() while sending: the command is detached, the reply kept for the last frame, the rest read', () => {
    const { life, calls, ended } = harness();
    life.move(CommandEvent.LoggedIn);
    life.begin(inflight('n2'));
    life.sendRest();
    expect(life.phase).to.equal(Phase.Sending);
    const lost = new Error('lost');
    life.discardRest(lost);
    expect(life.phase).to.equal(Phase.Discarding);
    expect(life.inflight).to.equal(null);
    expect(ended).to.deep.equal(['n2']);
    expect(life.readsClient()).to.equal(true);
    expect(life.takeDiscardReply()).to.equal(lost);
    expect(life.takeDiscardReply()).to.equal(null);
    expect(calls).to.deep.equal(['pump', 'pump']);
  });

  it('an impossible move is reported as a BUG and changes nothing', () => {
    const { life, calls } = harness();
    life.move(CommandEvent.LoggedIn);
    life.move(CommandEvent.Await);
    expect(life.move(CommandEvent.SendRest)).to.equal(false);
    expect(calls).to.deep.equal(['bug awaiting send-rest']);
    expect(life.phase).to.equal(Phase.Awaiting);
  });

  it('after close, a late end() reads nothing and reports no BUG', () => {
    const { life, calls } = harness();
    life.move(CommandEvent.LoggedIn);
    life.move(CommandEvent.SetUp);
    expect(life.move(CommandEvent.Close)).to.equal(true);
    life.end();
    expect(life.move(CommandEvent.Await)).to.equal(false);
    expect(calls).to.deep.equal([]);
    expect(life.isClosed()).to.equal(true);
  });

  it('reads the client only in idle, sending, discarding and auth', () => {
    const reading = new Set(['idle', 'sending', 'discarding', 'auth', 'uploading']);
    const paths: Record<string, CommandEvent[]> = {
      handshake: [],
      idle: [CommandEvent.LoggedIn],
      setup: [CommandEvent.LoggedIn, CommandEvent.SetUp],
      sending: [CommandEvent.LoggedIn, CommandEvent.SendRest],
      awaiting: [CommandEvent.LoggedIn, CommandEvent.Await],
      discarding: [CommandEvent.LoggedIn, CommandEvent.Discard],
      auth: [CommandEvent.LoggedIn, CommandEvent.ChangeUser],
      uploading: [CommandEvent.LoggedIn, CommandEvent.Await, CommandEvent.Upload],
      closed: [CommandEvent.Close],
    };
    for (const [phase, events] of Object.entries(paths)) {
      const { life } = harness();
      for (const e of events) life.move(e);
      expect(PHASE_NAMES[life.phase]).to.equal(phase);
      expect(life.readsClient(), phase).to.equal(reading.has(phase));
    }
  });

  it('the owed error is delivered once', () => {
    const { life } = harness();
    const owed = new Error('transaction lost');
    life.owed = owed;
    expect(life.takeOwed()).to.equal(owed);
    expect(life.takeOwed()).to.equal(null);
  });

  it('an upload: the client is read from the sequence id after the request; a loss mid-file discards up to the empty packet', () => {
    const { life, calls, ended } = harness();
    life.move(CommandEvent.LoggedIn);
    life.begin(inflight(null));
    life.move(CommandEvent.Await);
    life.upload(3);
    expect(life.phase).to.equal(Phase.Uploading);
    expect(calls).to.deep.equal(['expect 3', 'pump']);
    life.discardRest(new Error('lost mid-file'));
    expect(life.phase).to.equal(Phase.Discarding);
    expect(life.discardsUpload).to.equal(true);
    life.end();
    expect(life.discardsUpload, 'the next discard is a command again').to.equal(false);
    expect(ended).to.deep.equal([]);
  });

  it('a response cannot end while the client is still sending its file', () => {
    const { life, calls } = harness();
    life.move(CommandEvent.LoggedIn);
    life.move(CommandEvent.Await);
    life.upload(2);
    expect(life.move(CommandEvent.Done)).to.equal(false);
    expect(calls).to.include('bug uploading done');
  });
});
