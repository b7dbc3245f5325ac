/**
 * The project's import graph has no circle (issue 14): every relative import or re-export of
 * every TypeScript file, `import type` included, since a type circle is still two modules that
 * cannot be read one without the other. Strongly connected components by Tarjan's algorithm.
 */

import { expect } from 'chai';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { repoRoot } from '../bed/dolt-binary';

const SOURCE_DIRS = ['agent', 'bench', 'bin', 'cli', 'common', 'proto', 'proxy', 'sandbox', 'test'];
const IMPORT = /^(?:import|export)\s[^'"]*?from\s+'(\.[^']+)'/gm;

function sourceFiles(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) sourceFiles(path, out);
    else if (name.endsWith('.ts')) out.push(path);
  }
  return out;
}

/** Components of more than one file, or a file that imports itself. */
function circles(edges: Map<string, string[]>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  let next = 0;
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next);
    next++;
    stack.push(v);
    onStack.add(v);
    for (const w of edges.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v) as number, low.get(w) as number));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v) as number, index.get(w) as number));
      }
    }
    if (low.get(v) !== index.get(v)) return;
    const component: string[] = [];
    for (;;) {
      const w = stack.pop() as string;
      onStack.delete(w);
      component.push(w);
      if (w === v) break;
    }
    if (component.length > 1 || (edges.get(v) ?? []).includes(v)) found.push(component);
  };
  for (const v of edges.keys()) if (!index.has(v)) visit(v);
  return found;
}

describe('import graph', () => {
  it('has no circle anywhere in the project', () => {
    const files = SOURCE_DIRS.flatMap((dir) => sourceFiles(join(repoRoot, dir)));
    const known = new Set(files);
    const edges = new Map<string, string[]>();
    for (const file of files) {
      const targets: string[] = [];
      for (const match of readFileSync(file, 'utf8').matchAll(IMPORT)) {
        const base = normalize(join(dirname(file), match[1]));
        const target = [`${base}.ts`, join(base, 'index.ts')].find((candidate) => known.has(candidate));
        if (target !== undefined) targets.push(target);
      }
      edges.set(file, targets);
    }
    expect(files.length, 'files scanned').to.be.greaterThan(200);
    expect([...edges.values()].flat().length, 'imports found').to.be.greaterThan(1000);
    const shown = circles(edges).map((component) => component.map((file) => relative(repoRoot, file)).sort());
    expect(shown).to.deep.equal([]);
  });

  it('the circle finder finds a circle (so the check above can fail)', () => {
    const edges = new Map([['a', ['b']], ['b', ['c']], ['c', ['a']], ['d', ['a']]]);
    expect(circles(edges).map((c) => c.sort())).to.deep.equal([['a', 'b', 'c']]);
  });
});
