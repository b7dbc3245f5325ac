/**
 * What the fuzzer mutates: well-formed packets a real client sends. Command payloads (after
 * login) cover every command the proxy answers or forwards, and the statements it treats
 * specially (KILL, LOAD DATA LOCAL, SET, PREPARE, multi-statements, routing hints); handshake
 * responses (before login) cover both auth plugins, SSL and connect attributes. Nothing here
 * sleeps or drops the fuzz table, so whatever a mutation makes of it stays quick.
 */

import { Buffer } from 'node:buffer';
import { buildHandshakeResponse41, Capability, Command, scrambleCachingSha2Password, scrambleNativePassword } from '../../proxy/protocol';

const SQL = [
  'SELECT 1',
  'SELECT id, v FROM fuzz WHERE id = 1',
  "INSERT INTO fuzz VALUES (7, 'seven') ON DUPLICATE KEY UPDATE v = 'again'",
  "UPDATE fuzz SET v = CONCAT(v, 'x') WHERE id = 2",
  'SET @a = 1',
  "SET SESSION sql_mode = 'ANSI_QUOTES'",
  'SET NAMES utf8mb4',
  'SET autocommit = 0',
  'BEGIN',
  'COMMIT',
  'ROLLBACK',
  'SELECT @@version, @@port',
  'SHOW TABLES',
  'SHOW WARNINGS',
  'USE fuzzdb',
  'KILL QUERY 1',
  'KILL 4294967295',
  "LOAD DATA LOCAL INFILE '/etc/passwd' INTO TABLE fuzz",
  "PREPARE s FROM 'SELECT ? + 1'",
  'EXECUTE s USING @a',
  'DEALLOCATE PREPARE s',
  'SELECT 1; SELECT 2',
  '/* doltgate:primary */ SELECT 3',
  '# comment\nSELECT 4',
  '-- comment\nSELECT 5',
  'SELECT LAST_INSERT_ID(), ROW_COUNT(), FOUND_ROWS()',
  'CREATE TEMPORARY TABLE IF NOT EXISTS tmp_fuzz (a INT)',
  'SELECT GET_LOCK(\'fuzz\', 0), RELEASE_LOCK(\'fuzz\')',
  "SELECT 'it''s', \"q\\\"uote\", `id` FROM fuzz LIMIT 1",
  'SELECT * FROM fuzz FOR UPDATE',
  'XA START \'x\'',
  'LOCK TABLES fuzz READ',
  'UNLOCK TABLES',
];

function withCommand(command: number, body: Buffer | string = Buffer.alloc(0)): Buffer {
  return Buffer.concat([Buffer.from([command]), Buffer.from(body)]);
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
}

/** COM_STMT_EXECUTE of statement `id` with two LONGLONG parameters, types sent. */
function execute(id: number): Buffer {
  return Buffer.concat([
    Buffer.from([Command.COM_STMT_EXECUTE]), u32(id), Buffer.from([0]), u32(1),
    Buffer.from([0x00, 0x01, 0x08, 0x00, 0x08, 0x00]),
    Buffer.from([5, 0, 0, 0, 0, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0]),
  ]);
}

/** Command payloads, for a session that prepared `SELECT ? + ?` as statement 1 and `SELECT ?` as 2. */
export function commandSeeds(): Buffer[] {
  return [
    ...SQL.map((sql) => withCommand(Command.COM_QUERY, sql)),
    withCommand(Command.COM_INIT_DB, 'fuzzdb'),
    withCommand(Command.COM_FIELD_LIST, 'fuzz\0'),
    withCommand(Command.COM_PING),
    withCommand(Command.COM_STATISTICS),
    withCommand(Command.COM_RESET_CONNECTION),
    withCommand(Command.COM_SET_OPTION, Buffer.from([0, 0])),
    withCommand(Command.COM_SET_OPTION, Buffer.from([1, 0])),
    withCommand(Command.COM_STMT_PREPARE, 'SELECT ? + ?'),
    withCommand(Command.COM_STMT_PREPARE, 'INSERT INTO fuzz VALUES (?, ?) ON DUPLICATE KEY UPDATE v = VALUES(v)'),
    execute(1),
    execute(2),
    Buffer.concat([Buffer.from([Command.COM_STMT_SEND_LONG_DATA]), u32(1), Buffer.from([0, 0]), Buffer.from('long data')]),
    Buffer.concat([Buffer.from([Command.COM_STMT_RESET]), u32(1)]),
    Buffer.concat([Buffer.from([Command.COM_STMT_CLOSE]), u32(2)]),
    Buffer.concat([Buffer.from([Command.COM_STMT_FETCH]), u32(1), u32(10)]),
    Buffer.concat([Buffer.from([Command.COM_PROCESS_KILL]), u32(1)]),
    Buffer.concat([Buffer.from([Command.COM_CHANGE_USER]), Buffer.from('fuzz\0'), Buffer.from([20]), Buffer.alloc(20, 0x41), Buffer.from('fuzzdb\0'), Buffer.from([45, 0]), Buffer.from('mysql_native_password\0')]),
    Buffer.concat([Buffer.from([0x12]), u32(4), Buffer.from([0, 0]), u32(1), Buffer.from('binlog.000001')]),
    Buffer.from([0x15, 1, 0, 0, 0, 0, 0, 0]),
  ];
}

export const FUZZ_CAPABILITIES = (Capability.CLIENT_PROTOCOL_41 | Capability.CLIENT_SECURE_CONNECTION | Capability.CLIENT_PLUGIN_AUTH | Capability.CLIENT_CONNECT_WITH_DB
  | Capability.CLIENT_DEPRECATE_EOF | Capability.CLIENT_MULTI_RESULTS | Capability.CLIENT_TRANSACTIONS | Capability.CLIENT_PS_MULTI_RESULTS) >>> 0;

/** Handshake responses with the right proof for `scramble`, in the shapes clients send. */
export function handshakeSeeds(user: string, password: string, scramble: Buffer, database: string): Buffer[] {
  const native = scrambleNativePassword(password, scramble);
  const sha = scrambleCachingSha2Password(password, scramble);
  const base = { charset: 45, username: user, database, maxPacketSize: 1 << 24 };
  return [
    buildHandshakeResponse41({ ...base, capabilities: FUZZ_CAPABILITIES, authResponse: native, authPluginName: 'mysql_native_password' }),
    buildHandshakeResponse41({ ...base, capabilities: FUZZ_CAPABILITIES, authResponse: sha, authPluginName: 'caching_sha2_password' }),
    buildHandshakeResponse41({ ...base, capabilities: (FUZZ_CAPABILITIES | Capability.CLIENT_CONNECT_ATTRS) >>> 0, authResponse: native, authPluginName: 'mysql_native_password', connectAttributes: new Map([['_client_name', 'fuzz'], ['program', 'x'.repeat(40)]]) }),
    buildHandshakeResponse41({ ...base, capabilities: (FUZZ_CAPABILITIES | Capability.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA) >>> 0, authResponse: native, authPluginName: 'mysql_native_password' }),
    buildHandshakeResponse41({ ...base, capabilities: (FUZZ_CAPABILITIES & ~Capability.CLIENT_PLUGIN_AUTH) >>> 0, authResponse: native }),
  ];
}

/** The proofs a login as the fuzz user may carry and still be a real login. */
export function validProofs(password: string, scramble: Buffer): Buffer[] {
  return [scrambleNativePassword(password, scramble), scrambleCachingSha2Password(password, scramble)];
}
