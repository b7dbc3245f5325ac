/**
 * deploy/OPERATIONS.md, read as a document with rules (the running of its commands is
 * test/integration/deploy-operations.test.ts):
 * - every ```sh block says on its first line whether it is run (`# doc-test: <name>`, names
 *   unique) or not and why (`# not-run: <why>`); no third kind;
 * - every variable a doc-test block reads is in the guide's variable table or set in the block;
 * - every ```yaml block parses; those marked `# agent.yaml` load with the agent's parser;
 * - internal links point at headings that exist.
 */

import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { parseAgentConfig } from '../../agent/agent-config';
import { APP_USER_PRIVILEGES } from '../bed/app-user-checks';
import { repoRoot } from '../bed/dolt-binary';

interface Fence {
  lang: string;
  text: string;
  line: number;
}

function fences(markdown: string): Fence[] {
  const out: Fence[] = [];
  const lines = markdown.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)```(\w*)\s*$/.exec(lines[i]);
    if (!open) continue;
    const indent = open[1].length;
    const body: string[] = [];
    let j = i + 1;
    while (j < lines.length && !/^\s*```\s*$/.test(lines[j])) body.push(lines[j++].slice(indent));
    out.push({ lang: open[2], text: body.join('\n'), line: i + 1 });
    i = j;
  }
  return out;
}

function anchor(heading: string): string {
  return heading.toLowerCase().replace(/[^a-z0-9 -]/g, '').replace(/ /g, '-');
}

describe('deploy/OPERATIONS.md as a document', () => {
  const guide = readFileSync(join(repoRoot, 'deploy', 'OPERATIONS.md'), 'utf8');
  const blocks = fences(guide);
  const sh = blocks.filter((block) => block.lang === 'sh');

  it('every sh block is marked doc-test (with a unique name) or not-run (with a reason)', () => {
    expect(sh.length).to.be.at.least(20);
    const names: string[] = [];
    for (const block of sh) {
      const first = block.text.split('\n')[0];
      const marker = /^# (doc-test: ([a-z0-9-]+)|not-run: \S.*)$/.exec(first);
      expect(marker, `line ${block.line}: first line ${JSON.stringify(first)}`).to.not.equal(null);
      if (marker?.[2]) names.push(marker[2]);
    }
    expect(new Set(names).size, `doc-test names: ${names.join(', ')}`).to.equal(names.length);
    expect(names.length).to.be.at.least(20);
    expect(blocks.every((block) => ['sh', 'yaml'].includes(block.lang)), 'only sh and yaml blocks').to.equal(true);
  });

  it('every variable a doc-test block reads is in the variable table or set in the block', () => {
    const table = new Set([...guide.matchAll(/^\| `([A-Z_]+)`(?:, `([A-Z_]+)`)? \|/gm)].flatMap((m) => [m[1], m[2]]).filter(Boolean));
    expect(table.size).to.be.at.least(10);
    const missing: string[] = [];
    for (const block of sh.filter((b) => b.text.startsWith('# doc-test:'))) {
      const assigned = new Set([...block.text.matchAll(/(?:^|\s|export )([A-Za-z_][A-Za-z0-9_]*)=/gm), ...block.text.matchAll(/\bfor ([a-z_]+) in/g)].map((m) => m[1]));
      for (const m of block.text.matchAll(/\$\{?([A-Za-z_][A-Za-z0-9_]*)/g)) {
        const name = m[1];
        if (!table.has(name) && !assigned.has(name)) missing.push(`line ${block.line}: $${name}`);
      }
    }
    expect(missing).to.deep.equal([]);
  });

  it('every yaml block parses, and the agent.yaml ones load with the agent parser', () => {
    const yamlBlocks = blocks.filter((block) => block.lang === 'yaml');
    expect(yamlBlocks.length).to.be.at.least(2);
    const saved = process.env.DOLTGATE_GRPC_TOKEN;
    process.env.DOLTGATE_GRPC_TOKEN = 'guide-token-0123456789';
    try {
      for (const block of yamlBlocks) {
        expect(() => parse(block.text), `line ${block.line}`).to.not.throw();
        if (block.text.startsWith('# agent.yaml')) {
          const config = parseAgentConfig(block.text, '/etc/doltgate/agent-n1.yaml');
          expect(config.name, `line ${block.line}`).to.equal('n1');
        }
      }
    } finally {
      if (saved === undefined) delete process.env.DOLTGATE_GRPC_TOKEN;
      else process.env.DOLTGATE_GRPC_TOKEN = saved;
    }
  });

  it('internal links point at headings that exist', () => {
    const anchors = new Set([...guide.matchAll(/^#+ (.+)$/gm)].map((m) => anchor(m[1])));
    const links = [...guide.matchAll(/\]\(#([a-z0-9-]+)\)/g)].map((m) => m[1]);
    expect(links.length).to.be.greaterThan(0);
    expect(links.filter((link) => !anchors.has(link))).to.deep.equal([]);
  });

  it('the guide and the Kubernetes init grant the application user data rights only (APP_USER_PRIVILEGES), never ALL', () => {
    const templates = readFileSync(join(repoRoot, 'deploy', 'kubernetes', 'templates.yaml'), 'utf8');
    expect(guide).to.contain(`GRANT ${APP_USER_PRIVILEGES} ON *.* TO 'app'@'%';`);
    expect(templates).to.contain(`GRANT ${APP_USER_PRIVILEGES} ON *.* TO '$DOLTGATE_APP_USER'@'%';`);
    for (const text of [guide, templates]) expect(text).to.not.match(/GRANT ALL ON \*\.\* TO '(app|\$DOLTGATE_APP_USER)'/);
  });
});
