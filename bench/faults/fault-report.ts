/**
 * The fault suite's verdict, as numbers: one record per injected fault (what was acknowledged
 * while it ran and what became of it), folded per fault kind into the table the bench prints and
 * the test slice asserts on. Pure; table-tested in test/unit/fault-report.test.ts.
 *
 * Terms (they match the issue that asked for the suite):
 * - acknowledged: writes a client got OK for while the fault ran (injection to convergence);
 * - lost: acknowledged writes not on the primary's `main` afterwards, cumulative over the
 *   sandbox's life (a write lost later counts against the fault during which it disappeared);
 *   split into orphaned (found on a doltgate/orphaned/ branch) and gone (on no branch at all);
 * - warned: of the lost, those whose OK carried a warning (cluster replication with ack writes:
 *   3024, "Timed out replication of commit to N out of M replicas", i.e. Dolt said the commit may
 *   be on the primary only). They are counted and shown, and excused from the verdict only when
 *   they are orphaned: even such a commit must never be gone;
 * - dual-writable windows: runs of probe rounds in which two or more nodes accepted a write;
 * - longest write gap: the longest time one writer went without an acknowledgement.
 */

/** What a fault run and a kind's summary both count. */
interface Tally {
  kind: string;
  acknowledged: number;
  lost: number;
  orphaned: number;
  gone: number;
  warned: number;
  dualWindows: number;
  longestDualMs: number;
  longestGapMs: number;
  /** Client errors by errno (or by error code for errors without one, e.g. ECONNREFUSED). */
  errors: Record<string, number>;
}

export interface FaultRun extends Tally {
  /** The sandbox this ran in (for the report's footnote). */
  sandbox: number;
  converged: boolean;
  /** From healing to a converged cluster; null when it did not converge. */
  convergeMs: number | null;
  /** Why it did not converge, or other notes a person should read. */
  notes: string[];
}

export interface KindSummary extends Tally {
  runs: number;
  /** How many of the runs converged. */
  converged: number;
}

export function summarize(runs: readonly FaultRun[]): KindSummary[] {
  const byKind = new Map<string, KindSummary>();
  for (const run of runs) {
    let s = byKind.get(run.kind);
    if (s === undefined) {
      s = { kind: run.kind, runs: 0, acknowledged: 0, lost: 0, orphaned: 0, gone: 0, warned: 0, dualWindows: 0, longestDualMs: 0, longestGapMs: 0, converged: 0, errors: {} };
      byKind.set(run.kind, s);
    }
    s.runs++;
    s.acknowledged += run.acknowledged;
    s.lost += run.lost;
    s.orphaned += run.orphaned;
    s.gone += run.gone;
    s.warned += run.warned;
    s.dualWindows += run.dualWindows;
    s.longestDualMs = Math.max(s.longestDualMs, run.longestDualMs);
    s.longestGapMs = Math.max(s.longestGapMs, run.longestGapMs);
    if (run.converged) s.converged++;
    for (const [code, count] of Object.entries(run.errors)) s.errors[code] = (s.errors[code] ?? 0) + count;
  }
  return [...byKind.values()].sort((a, b) => (a.kind < b.kind ? -1 : a.kind > b.kind ? 1 : 0));
}

export function totals(summaries: readonly KindSummary[]): KindSummary {
  const all = summarize(summaries.map((s) => ({ ...s, kind: 'all', sandbox: 0, converged: false, convergeMs: null, notes: [] })));
  const t = all[0] ?? { kind: 'all', runs: 0, acknowledged: 0, lost: 0, orphaned: 0, gone: 0, warned: 0, dualWindows: 0, longestDualMs: 0, longestGapMs: 0, converged: 0, errors: {} };
  return { ...t, runs: summaries.reduce((n, s) => n + s.runs, 0), converged: summaries.reduce((n, s) => n + s.converged, 0) };
}

function formatErrors(errors: Record<string, number>): string {
  const entries = Object.entries(errors).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  return entries.length === 0 ? '-' : entries.map(([code, count]) => `${code}×${count}`).join(' ');
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

/** A Markdown table: one row per fault kind, then the totals. */
export function formatReport(runs: readonly FaultRun[]): string {
  const summaries = summarize(runs);
  const header = ['fault', 'runs', 'acknowledged', 'lost', 'orphaned', 'gone', 'lost with warning 3024', 'dual-writable windows', 'longest dual', 'longest write gap', 'converged', 'client errors by errno'];
  const row = (s: KindSummary): string[] => [
    s.kind, String(s.runs), String(s.acknowledged), String(s.lost), String(s.orphaned), String(s.gone), String(s.warned), String(s.dualWindows),
    s.dualWindows === 0 ? '-' : seconds(s.longestDualMs), seconds(s.longestGapMs), `${s.converged}/${s.runs}`, formatErrors(s.errors),
  ];
  const lines = [header, header.map(() => '---'), ...summaries.map(row), row(totals(summaries))];
  return lines.map((cells) => `| ${cells.join(' | ')} |`).join('\n');
}

/** The suite's pass condition: nothing acknowledged lost, never two writers, always converged. */
export function verdict(runs: readonly FaultRun[]): { ok: boolean; problems: string[] } {
  const problems: string[] = [];
  for (const run of runs) {
    const where = `${run.kind} (sandbox ${run.sandbox})`;
    // A write Dolt answered with warning 3024 and that recovery saved on an orphan branch is what
    // asynchronous durability allows; any other acknowledged write off main is a loss.
    const excused = Math.min(run.warned, run.orphaned);
    if (run.lost - excused > 0 || run.gone > 0) {
      problems.push(`${where}: ${run.lost} acknowledged write(s) not on main (${run.orphaned} on orphan branches, ${run.gone} on no branch${run.warned > 0 ? `; ${run.warned} answered with warning 3024` : ''})`);
    }
    if (run.dualWindows > 0) problems.push(`${where}: ${run.dualWindows} dual-writable window(s), the longest ${run.longestDualMs} ms`);
    if (!run.converged) problems.push(`${where}: did not converge${run.notes.length > 0 ? ` (${run.notes.join('; ')})` : ''}`);
  }
  return { ok: problems.length === 0, problems };
}
