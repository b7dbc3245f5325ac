/** The fault suite's report (bench/faults/fault-report.ts): folding runs per kind, the table, the verdict. */

import { expect } from 'chai';
import { formatReport, summarize, verdict, type FaultRun } from '../../bench/faults/fault-report';

function run(kind: string, extra: Partial<FaultRun> = {}): FaultRun {
  return { kind, sandbox: 1, acknowledged: 100, lost: 0, orphaned: 0, gone: 0, warned: 0, dualWindows: 0, longestDualMs: 0, longestGapMs: 1_000, converged: true, convergeMs: 2_000, errors: {}, notes: [], ...extra };
}

describe('fault report', () => {
  it('sums per kind, keeps the longest gap and dual window, merges errors by code', () => {
    const [a, b] = summarize([
      run('primary-dolt-kill', { longestGapMs: 2_400, errors: { '2013': 1 } }),
      run('primary-dolt-kill', { acknowledged: 50, longestGapMs: 1_800, errors: { '2013': 2, '1205': 1 } }),
      run('etcd-stall', { converged: false, dualWindows: 1, longestDualMs: 300 }),
    ]);
    expect(a).to.deep.include({ kind: 'etcd-stall', runs: 1, converged: 0, dualWindows: 1, longestDualMs: 300 });
    expect(b).to.deep.include({ kind: 'primary-dolt-kill', runs: 2, acknowledged: 150, longestGapMs: 2_400, converged: 2 });
    expect(b.errors).to.deep.equal({ '2013': 3, '1205': 1 });
  });

  it('prints one row per kind and a totals row', () => {
    const table = formatReport([run('b-kind', { errors: { ECONNREFUSED: 4, '2013': 1 } }), run('a-kind', { lost: 2, orphaned: 1, gone: 1 })]);
    const lines = table.split('\n');
    expect(lines).to.have.length(5);
    expect(lines[0]).to.equal('| fault | runs | acknowledged | lost | orphaned | gone | lost with warning 3024 | dual-writable windows | longest dual | longest write gap | converged | client errors by errno |');
    expect(lines[2]).to.equal('| a-kind | 1 | 100 | 2 | 1 | 1 | 0 | 0 | - | 1.0 s | 1/1 | - |');
    expect(lines[3]).to.equal('| b-kind | 1 | 100 | 0 | 0 | 0 | 0 | 0 | - | 1.0 s | 1/1 | ECONNREFUSED×4 2013×1 |');
    expect(lines[4]).to.equal('| all | 2 | 200 | 2 | 1 | 1 | 0 | 0 | - | 1.0 s | 2/2 | ECONNREFUSED×4 2013×1 |');
  });

  it('passes only with nothing lost, no dual window and every run converged, naming each problem', () => {
    expect(verdict([run('x'), run('y')])).to.deep.equal({ ok: true, problems: [] });
    const bad = verdict([run('x', { lost: 3, orphaned: 2, gone: 1 }), run('y', { dualWindows: 2, longestDualMs: 900 }), run('z', { converged: false, notes: ['no stable primary'] })]);
    expect(bad.ok).to.equal(false);
    expect(bad.problems).to.deep.equal([
      'x (sandbox 1): 3 acknowledged write(s) not on main (2 on orphan branches, 1 on no branch)',
      'y (sandbox 1): 2 dual-writable window(s), the longest 900 ms',
      'z (sandbox 1): did not converge (no stable primary)',
    ]);
  });

  it('a write answered with warning 3024 and saved on an orphan branch is excused; one gone, or one without the warning, is not', () => {
    expect(verdict([run('w', { lost: 2, orphaned: 2, warned: 2 })])).to.deep.equal({ ok: true, problems: [] });
    expect(verdict([run('w', { lost: 3, orphaned: 2, warned: 2 })]).problems).to.deep.equal(['w (sandbox 1): 3 acknowledged write(s) not on main (2 on orphan branches, 0 on no branch; 2 answered with warning 3024)']);
    expect(verdict([run('w', { lost: 2, orphaned: 1, gone: 1, warned: 2 })]).problems).to.deep.equal(['w (sandbox 1): 2 acknowledged write(s) not on main (1 on orphan branches, 1 on no branch; 2 answered with warning 3024)']);
  });
});
