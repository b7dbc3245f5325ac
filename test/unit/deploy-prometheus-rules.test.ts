/**
 * deploy/prometheus: checked by Prometheus's own tool, `promtool` (Debian's prometheus package;
 * scripts/install-deploy-tools.sh installs it): `check config` on prometheus.yml (which also
 * checks the rule file and the file_sd target file it names), `check rules` on the alert rules,
 * and `test rules` on doltgate-alerts.test.yml, which makes every alert fire and not fire. Each
 * run must exit 0 and say SUCCESS.
 *
 * Beside the tool: the alerts the issue asks for exist, every alert has a test case where it
 * fires and one where it must stay quiet, and every metric an expression names is one the
 * agent or the proxy exports (names read from agent/agent-metrics.ts and proxy/proxy-metrics.ts).
 */

import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { repoRoot } from '../bed/dolt-binary';
import { exportedSeries } from '../bed/exported-series';

const dir = join(repoRoot, 'deploy', 'prometheus');

function promtool(args: string[]): Promise<{ code: number; output: string }> {
  return new Promise((resolve, reject) => {
    execFile('promtool', args, { cwd: dir, timeout: 60_000 }, (error, stdout, stderr) => {
      if (error && (error as NodeJS.ErrnoException).code === 'ENOENT') {
        reject(new Error('promtool is not installed: run scripts/install-deploy-tools.sh (Debian package prometheus)'));
        return;
      }
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, output: `${stdout}${stderr}` });
    });
  });
}

/** Metric names in a PromQL expression: identifiers before `{`, `[` or a word boundary that are not functions or keywords. */
export function metricNamesIn(expr: string): string[] {
  const withoutStrings = expr.replace(/"[^"]*"/g, '""');
  return [...withoutStrings.matchAll(/\b(doltgate_[a-z0-9_]+|up)\b/g)].map((m) => m[1]);
}

interface Rule {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

interface AlertTest {
  eval_time: string;
  alertname: string;
  exp_alerts?: unknown[];
}

describe('deploy/prometheus (promtool)', function () {
  this.timeout(60_000);
  const rules = (parse(readFileSync(join(dir, 'doltgate-alerts.yml'), 'utf8')) as { groups: Array<{ name: string; rules: Rule[] }> }).groups.flatMap((group) => group.rules);
  const alerts = rules.filter((rule) => rule.alert !== undefined);

  it('promtool check config prometheus.yml: valid, with its rule file and file_sd targets', async () => {
    const result = await promtool(['check', 'config', 'prometheus.yml']);
    expect(result.code, result.output).to.equal(0);
    expect(result.output).to.contain('SUCCESS: prometheus.yml is valid prometheus config file syntax');
    expect(result.output).to.match(/SUCCESS: \d+ rules found/);
  });

  it('promtool check rules doltgate-alerts.yml', async () => {
    const result = await promtool(['check', 'rules', 'doltgate-alerts.yml']);
    expect(result.code, result.output).to.equal(0);
    expect(result.output).to.contain(`SUCCESS: ${rules.length} rules found`);
  });

  it('promtool test rules doltgate-alerts.test.yml: every case passes', async () => {
    const result = await promtool(['test', 'rules', 'doltgate-alerts.test.yml']);
    expect(result.code, result.output).to.equal(0);
    expect(result.output).to.contain('SUCCESS');
    expect(result.output).to.not.contain('FAILED');
  });

  it('has the alerts the operations guide promises, each with a severity, summary and runbook', () => {
    const names = alerts.map((rule) => rule.alert);
    for (const name of [
      'DoltgateNoPrimary',
      'DoltgateFailoverTooLong',
      'DoltgateCommitsNotOnRemoteGrowing',
      'DoltgateReplicaDown',
      'DoltgateLeaseRenewalsFailing',
      'DoltgateWriteHoldTimeouts',
      'DoltgateBackupStale',
    ]) {
      expect(names).to.include(name);
    }
    const guide = readFileSync(join(repoRoot, 'deploy', 'OPERATIONS.md'), 'utf8');
    const anchors = new Set([...guide.matchAll(/^#+ (.+)$/gm)].map((m) => m[1].toLowerCase().replace(/[^a-z0-9 -]/g, '').replace(/ /g, '-')));
    for (const rule of alerts) {
      expect(rule.labels?.severity, `${rule.alert} severity`).to.be.oneOf(['critical', 'warning']);
      expect(rule.annotations?.summary, `${rule.alert} summary`).to.be.a('string');
      const runbook = rule.annotations?.runbook ?? '';
      expect(runbook, `${rule.alert} runbook`).to.match(/^deploy\/OPERATIONS\.md#/);
      expect(anchors, `${rule.alert} runbook ${runbook} names a heading of OPERATIONS.md`).to.include(runbook.split('#')[1]);
    }
  });

  it('every alert has a test case where it fires and one where it must not', () => {
    const tests = (parse(readFileSync(join(dir, 'doltgate-alerts.test.yml'), 'utf8')) as { tests: Array<{ alert_rule_test?: AlertTest[] }> }).tests.flatMap((test) => test.alert_rule_test ?? []);
    for (const rule of alerts) {
      const cases = tests.filter((test) => test.alertname === rule.alert);
      expect(cases.some((test) => (test.exp_alerts ?? []).length > 0), `${rule.alert} fires in some test`).to.equal(true);
      expect(cases.some((test) => (test.exp_alerts ?? []).length === 0), `${rule.alert} stays quiet in some test`).to.equal(true);
    }
  });

  it('every metric the rules use is exported by the agent or the proxy', () => {
    const exported = exportedSeries();
    expect(exported.size).to.be.at.least(20);
    const unknown = rules.flatMap((rule) => metricNamesIn(rule.expr).filter((name) => name !== 'up' && !exported.has(name)).map((name) => `${rule.alert}: ${name}`));
    expect(unknown).to.deep.equal([]);
  });
});
