/**
 * deploy/grafana/doltgate-dashboard.json: a Grafana dashboard (JSON model, schemaVersion 39).
 * Parsed here and checked for what the issue promises: panels for role and epoch per node, QPS
 * by route, latency, held writes, failovers and each step's duration, commits not on the remote,
 * lease renew latency and backup age; every query names only metrics the agent or the proxy
 * exports (read from agent/agent-metrics.ts and proxy/proxy-metrics.ts, with the `_bucket`,
 * `_sum`, `_count` series of histograms) and is scoped to the `$cluster` variable; ids are unique
 * and panels do not overlap. test/integration/deploy-prometheus.test.ts runs every query against
 * a real Prometheus scraping a real cluster, which checks the PromQL itself.
 */

import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../bed/dolt-binary';
import { exportedSeries } from '../bed/exported-series';

interface Target {
  expr: string;
  refId: string;
  datasource?: { type: string; uid: string };
}

interface Panel {
  id: number;
  type: string;
  title: string;
  description?: string;
  gridPos: { h: number; w: number; x: number; y: number };
  targets?: Target[];
  panels?: Panel[];
  datasource?: { type: string; uid: string };
}

interface Dashboard {
  schemaVersion: number;
  uid: string;
  title: string;
  panels: Panel[];
  templating: { list: Array<{ name: string; type: string; query: unknown }> };
  annotations: { list: Array<{ expr?: string }> };
}

export const dashboardPath = join(repoRoot, 'deploy', 'grafana', 'doltgate-dashboard.json');

export function loadDashboard(): Dashboard {
  return JSON.parse(readFileSync(dashboardPath, 'utf8')) as Dashboard;
}

/** Every panel, rows' nested panels included. */
export function allPanels(dashboard: Dashboard): Panel[] {
  return dashboard.panels.flatMap((panel) => [panel, ...(panel.panels ?? [])]);
}

/** Every PromQL expression of the dashboard: panel targets and annotations. */
export function dashboardQueries(dashboard: Dashboard): Array<{ where: string; expr: string }> {
  const queries = allPanels(dashboard).flatMap((panel) => (panel.targets ?? []).map((target) => ({ where: `${panel.title} ${target.refId}`, expr: target.expr })));
  for (const annotation of dashboard.annotations.list) if (annotation.expr) queries.push({ where: 'annotation', expr: annotation.expr });
  return queries;
}

function metricNamesIn(expr: string): string[] {
  return [...expr.replace(/"[^"]*"/g, '""').matchAll(/\b(doltgate_[a-z0-9_]+)\b/g)].map((m) => m[1]);
}

describe('deploy/grafana dashboard', () => {
  const dashboard = loadDashboard();
  const panels = allPanels(dashboard);
  const queries = dashboardQueries(dashboard);

  it('is a Grafana dashboard model: schemaVersion 39, a uid, a Prometheus datasource variable and a cluster variable', () => {
    expect(dashboard.schemaVersion).to.equal(39);
    expect(dashboard.uid).to.match(/^[a-z0-9-]{1,40}$/);
    const variables = Object.fromEntries(dashboard.templating.list.map((variable) => [variable.name, variable]));
    expect(variables.datasource?.type).to.equal('datasource');
    expect(variables.datasource?.query).to.equal('prometheus');
    expect(variables.cluster?.type).to.equal('query');
    expect(JSON.stringify(variables.cluster?.query)).to.contain('label_values(doltgate_agent_role, cluster)');
  });

  it('every metric a query names is exported by the agent or the proxy', () => {
    const exported = exportedSeries();
    expect(exported.size).to.be.at.least(20);
    const unknown = queries.flatMap((query) => metricNamesIn(query.expr).filter((name) => !exported.has(name)).map((name) => `${query.where}: ${name}`));
    expect(unknown).to.deep.equal([]);
    expect(queries.every((query) => metricNamesIn(query.expr).length > 0), 'every query names a doltgate metric').to.equal(true);
  });

  it('every query is scoped to the $cluster variable and uses the $datasource variable', () => {
    for (const query of queries) {
      for (const name of new Set(metricNamesIn(query.expr))) {
        const selectors = [...query.expr.matchAll(new RegExp(`\\b${name}\\{([^}]*)\\}`, 'g'))];
        expect(selectors.length, `${query.where}: ${name} has a label selector`).to.be.greaterThan(0);
        for (const selector of selectors) expect(selector[1], `${query.where}: ${name}`).to.contain('cluster=~"$cluster"');
      }
    }
    for (const panel of panels.filter((p) => p.type !== 'row')) {
      expect(panel.datasource?.uid, panel.title).to.equal('${datasource}');
      for (const target of panel.targets ?? []) expect(target.datasource?.uid, panel.title).to.equal('${datasource}');
    }
  });

  it('has the panels the issue promises', () => {
    const uses = (pattern: RegExp): Panel[] => panels.filter((panel) => (panel.targets ?? []).some((target) => pattern.test(target.expr)));
    const promised: Array<[string, RegExp]> = [
      ['role per node', /doltgate_agent_role\{[^}]*role="primary"/],
      ['epoch per node', /max by \(node\) \(doltgate_agent_epoch/],
      ['proxy epoch', /doltgate_proxy_topology_epoch/],
      ['QPS by route', /sum by \(route\) \(rate\(doltgate_proxy_queries_total/],
      ['latency', /histogram_quantile\(0\.99, sum by \(route, le\) \(rate\(doltgate_proxy_query_duration_seconds_bucket/],
      ['held writes', /doltgate_proxy_held_writes/],
      ['failovers', /doltgate_agent_failovers_total/],
      ["each step's duration", /sum by \(step\)[^/]*doltgate_agent_failover_step_seconds_sum/],
      ['commits not on the remote', /doltgate_agent_commits_not_on_remote/],
      ['lease renew latency', /doltgate_agent_lease_renew_seconds_bucket/],
      ['backup age', /doltgate_agent_backup_last_good_sync_age_seconds/],
    ];
    for (const [what, pattern] of promised) expect(uses(pattern).length, what).to.be.greaterThan(0);
    for (const panel of panels.filter((p) => p.type !== 'row')) expect(panel.description, `${panel.title} explains itself`).to.be.a('string').and.not.equal('');
  });

  it('panel ids are unique and panels sit on the 24-column grid without overlapping', () => {
    const ids = panels.map((panel) => panel.id);
    expect(new Set(ids).size).to.equal(ids.length);
    const cells = new Set<string>();
    for (const panel of panels) {
      const { x, y, w, h } = panel.gridPos;
      expect(x + w, `${panel.title} fits the grid`).to.be.at.most(24);
      for (let row = y; row < y + h; row++) {
        for (let column = x; column < x + w; column++) {
          const cell = `${row}:${column}`;
          expect(cells.has(cell), `${panel.title} overlaps another panel at ${cell}`).to.equal(false);
          cells.add(cell);
        }
      }
    }
  });
});
