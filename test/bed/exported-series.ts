/**
 * Series names the doltgate processes export, read from the metric definitions in the source:
 * counters as named (prom-client keeps the `_total` given), histograms as `_bucket`, `_sum` and
 * `_count`. The deploy checks compare dashboards and alert rules against it.
 */

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './dolt-binary';

export function exportedSeries(): Set<string> {
  const names = new Set<string>();
  for (const file of ['agent/agent-metrics.ts', 'proxy/proxy-metrics.ts']) {
    const text = readFileSync(join(repoRoot, file), 'utf8');
    for (const m of text.matchAll(/new (Gauge|Counter|Histogram|PromHistogram|Summary)\(\{\s*name:\s*'(doltgate_[a-z0-9_]+)'/g)) {
      const [, kind, name] = m;
      if (kind.endsWith('Histogram')) for (const suffix of ['_bucket', '_sum', '_count']) names.add(name + suffix);
      else if (kind === 'Summary') for (const suffix of ['', '_sum', '_count']) names.add(name + suffix);
      else names.add(name);
    }
  }
  return names;
}
