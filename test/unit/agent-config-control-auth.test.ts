/**
 * The control API is authenticated by default: an agent serving it needs a token (of some length)
 * or client certificates, or a setting whose name says the API is open.
 */

import { expect } from 'chai';
import { AgentConfigError, parseAgentConfig } from '../../agent/agent-config';

const base = 'name: n1\netcd: {endpoints: ["http://127.0.0.1:2379"]}\n';
const tls = 'grpc_tls: {cert: /c.pem, key: /k.pem, ca: /ca.pem, require_client_cert: true}\n';

describe('agent config: control API authentication', () => {
  const rows: Array<{ name: string; yaml: string; error?: RegExp; token?: string | null; open?: boolean }> = [
    { name: 'no control API: nothing to authenticate', yaml: '', token: null, open: false },
    { name: 'grpc with no token: refused', yaml: 'grpc: 127.0.0.1:7400\n', error: /grpc the control API needs authentication: set grpc_token_env .*grpc_insecure_no_auth/ },
    { name: 'grpc with a token', yaml: 'grpc: 127.0.0.1:7400\ngrpc_token: 0123456789abcdef\n', token: '0123456789abcdef', open: false },
    { name: 'a short token: refused', yaml: 'grpc: 127.0.0.1:7400\ngrpc_token: short\n', error: /grpc_token the token must be at least 16 characters/ },
    { name: 'client certificates instead of a token', yaml: `grpc: 127.0.0.1:7400\n${tls}`, token: null, open: false },
    { name: 'TLS without client certificates is no authentication', yaml: 'grpc: 127.0.0.1:7400\ngrpc_tls: {cert: /c.pem, key: /k.pem}\n', error: /needs authentication/ },
    { name: 'open only when asked by name', yaml: 'grpc: 127.0.0.1:7400\ngrpc_insecure_no_auth: true\n', token: null, open: true },
  ];
  for (const row of rows) {
    it(row.name, () => {
      const parse = () => parseAgentConfig(base + row.yaml);
      if (row.error) {
        expect(parse).to.throw(AgentConfigError, row.error);
        return;
      }
      const config = parse();
      expect(config.grpcToken).to.equal(row.token);
      expect(config.grpcInsecureNoAuth).to.equal(row.open);
    });
  }
});
