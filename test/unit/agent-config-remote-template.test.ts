import { expect } from 'chai';
import { AgentConfigError, parseAgentConfig } from '../../agent/agent-config';
import { remoteUrlFor } from '../../agent/dolt/server-config';

const base = 'name: n1\netcd: {endpoints: ["http://127.0.0.1:2379"]}\n';

describe('agent config: dolt.remote_url_template', () => {
  const rows: Array<{ yaml: string; template?: string | null; error?: RegExp }> = [
    { yaml: '', template: null },
    { yaml: 'dolt: {remote_url_template: "file:///srv/remote/{database}"}', template: 'file:///srv/remote/{database}' },
    { yaml: 'dolt: {remote_url_template: "aws://[table:bucket]/dbs/{database}"}', template: 'aws://[table:bucket]/dbs/{database}' },
    { yaml: 'dolt: {remote_url_template: "file:///srv/remote/app"}', error: /must contain \{database\}/ },
    { yaml: 'dolt: {remote_url_template: "/srv/remote/{database}"}', error: /must be a URL/ },
    { yaml: 'dolt: {remote_url_template: ""}', error: /non-empty string/ },
  ];
  for (const row of rows) {
    it(`${row.yaml || '(absent)'} → ${row.error ? `error ${row.error}` : row.template}`, () => {
      const parse = (): unknown => parseAgentConfig(base + row.yaml);
      if (row.error) {
        expect(parse).to.throw(AgentConfigError, row.error);
        return;
      }
      expect(parseAgentConfig(base + row.yaml).dolt.remoteUrlTemplate).to.equal(row.template);
    });
  }

  it('remoteUrlFor fills every {database}', () => {
    expect(remoteUrlFor('file:///r/{database}', 'orders')).to.equal('file:///r/orders');
    expect(remoteUrlFor('http://h/{database}/x/{database}', 'a')).to.equal('http://h/a/x/a');
  });
});
