/**
 * A single-pass, allocation-free tokenizer over the bytes of a MySQL query, just detailed enough
 * for routing: it tells words (with a keyword id when the word is one the router cares about),
 * string literals, quoted identifiers, user and system variables and the few punctuation marks
 * the classifier reads. Comments are skipped, except that `doltgate:primary` / `doltgate:replica`
 * inside any comment sets a hint bit, and MySQL executable comments (`/*! ... *\/`, with or without
 * a version number) are read as code, as the server does. Optimizer hints (`/*+ ... *\/`) are
 * comments. Double-quoted text lexes as a string; under ANSI_QUOTES it is an identifier, but
 * either way it is never a keyword, so the router needs no switch for that mode.
 *
 * It works on bytes, not on a JS string: the hot path holds the COM_QUERY payload as a Buffer,
 * and every byte that matters to SQL syntax is ASCII, which UTF-8 never uses inside a multi-byte
 * character. (Clients on sjis/big5/gbk can send 0x5C as a trail byte; such text can confuse the
 * string scanner, which then usually reports `unterminated`, and the classifier sends unclear
 * text to the primary.)
 *
 * One lexer is reset and reused; a token is described by fields on the lexer (`type`, `start`,
 * `stop`, `keyword`) that are valid until the next call to `next()`. Nothing is allocated per
 * token; `text()` allocates and is for the rare token whose spelling is needed.
 */

import { Buffer } from 'node:buffer';

export const enum Tok {
  End,
  Word,
  QuotedIdent,
  String,
  UserVar,
  SysVar,
  LParen,
  RParen,
  Semicolon,
  Comma,
  Dot,
  Eq,
  Assign,
  Other,
}

/** Hint bits accumulated over every comment the lexer skipped. */
export const HINT_PRIMARY = 1;
export const HINT_REPLICA = 2;

/**
 * The words the classifier reads, lower-case. A word token carries the interned string from this
 * list (so comparisons are identity checks), or undefined.
 */
const KEYWORD_LIST = [
  // statement heads
  'select', 'with', 'table', 'values', 'show', 'describe', 'desc', 'explain', 'help', 'insert',
  'update', 'delete', 'replace', 'load', 'import', 'create', 'alter', 'drop', 'rename', 'truncate',
  'call', 'do', 'begin', 'start', 'commit', 'rollback', 'savepoint', 'release', 'set', 'use',
  'lock', 'unlock', 'handler', 'prepare', 'execute', 'deallocate', 'xa', 'get', 'grant', 'revoke',
  'flush', 'kill', 'reset', 'purge', 'change', 'stop', 'install', 'uninstall', 'shutdown',
  'restart', 'clone', 'optimize', 'repair', 'check', 'checksum', 'analyze', 'cache', 'binlog',
  // words inside statements
  'transaction', 'work', 'and', 'no', 'chain', 'to', 'for', 'share', 'in', 'into', 'tables',
  'instance', 'temporary', 'procedure', 'function', 'trigger', 'event', 'view', 'index',
  'database', 'schema', 'user', 'role', 'end', 'case', 'if', 'loop', 'while', 'repeat',
  'global', 'session', 'local', 'persist', 'persist_only', 'names', 'character', 'charset',
  'password', 'default', 'autocommit', 'on', 'off', 'true', 'false', 'warnings', 'errors',
  'count', 'profile', 'profiles', 'diagnostics', 'current', 'stacked', 'read', 'only',
  'consistent', 'snapshot', 'write',
  // functions whose result or effect is bound to the session or the primary
  'get_lock', 'release_lock', 'release_all_locks', 'is_free_lock', 'is_used_lock',
  'last_insert_id', 'last_insert_uuid', 'found_rows', 'row_count',
  // Dolt version-control procedures; Dolt before 1.0 (and Doltgres) also call them as functions
  'dolt_add', 'dolt_backup', 'dolt_branch', 'dolt_checkout', 'dolt_cherry_pick', 'dolt_clean',
  'dolt_clone', 'dolt_commit', 'dolt_commit_hash_out', 'dolt_conflicts_resolve', 'dolt_fetch',
  'dolt_gc', 'dolt_merge', 'dolt_pull', 'dolt_purge_dropped_databases', 'dolt_push',
  'dolt_rebase', 'dolt_remote', 'dolt_reset', 'dolt_revert', 'dolt_rm', 'dolt_stash', 'dolt_tag',
  'dolt_undrop', 'dolt_update_column_tag', 'dolt_verify_constraints',
] as const;

export type Keyword = (typeof KEYWORD_LIST)[number];

const MAX_KEYWORD_LENGTH = 32;

// Buckets keyed by a 31-multiplier hash of the lower-cased bytes; verified byte by byte.
const keywordBuckets = new Map<number, Keyword[]>();
for (const kw of KEYWORD_LIST) {
  if (kw.length > MAX_KEYWORD_LENGTH) throw new Error(`keyword ${kw} is longer than ${MAX_KEYWORD_LENGTH}`);
  let h = 0;
  for (let i = 0; i < kw.length; i++) h = (Math.imul(h, 31) + kw.charCodeAt(i)) | 0;
  const bucket = keywordBuckets.get(h);
  if (bucket) bucket.push(kw);
  else keywordBuckets.set(h, [kw]);
}

// Byte classes. A word byte is what MySQL allows in an unquoted identifier (plus digits, so
// numbers lex as words too, which the router never needs to tell apart).
const WORD = 1;
const SPACE = 2;
const byteClass = new Uint8Array(256);
for (let b = 0; b < 256; b++) {
  const isWord = (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || b === 0x5f || b === 0x24 || b >= 0x80;
  if (isWord) byteClass[b] = WORD;
  else if (b === 0x20 || (b >= 0x09 && b <= 0x0d)) byteClass[b] = SPACE;
}

const EMPTY = new Uint8Array(0);
const HINT_TAG = 'doltgate:';

export class SqlLexer {
  private buf: Uint8Array = EMPTY;
  private end = 0;
  private pos = 0;
  private noBackslashEscapes = false;
  /** Inside `/*! ... *\/`; the closing `*\/` is skipped when met. */
  private inExecutable = false;

  /** The current token: kind and byte range [start, stop). */
  type: Tok = Tok.End;
  start = 0;
  stop = 0;
  /** For a word token that is one of the known keywords, its lower-case spelling. */
  keyword: Keyword | undefined = undefined;
  /** True when the current token lies inside an executable comment opened at `executableStart`. */
  tokenInExecutable = false;
  executableStart = 0;
  /** End of the last byte of code consumed (a token, or the `*\/` closing an executable comment). */
  codeEnd = 0;
  /** HINT_* bits from every comment skipped so far. */
  hints = 0;
  /** A string, identifier or comment ran to the end of the input. */
  unterminated = false;

  reset(buf: Uint8Array, noBackslashEscapes: boolean): void {
    this.buf = buf;
    this.end = buf.length;
    this.pos = 0;
    this.noBackslashEscapes = noBackslashEscapes;
    this.inExecutable = false;
    this.type = Tok.End;
    this.start = this.stop = 0;
    this.keyword = undefined;
    this.tokenInExecutable = false;
    this.executableStart = 0;
    this.codeEnd = 0;
    this.hints = 0;
    this.unterminated = false;
  }

  /** Drops the reference to the caller's buffer so a reused lexer does not keep it alive. */
  release(): void {
    this.buf = EMPTY;
    this.end = this.pos = 0;
  }

  /** Still inside an executable comment at the current position (statement text would be cut). */
  get insideExecutable(): boolean {
    return this.inExecutable;
  }

  next(): Tok {
    const buf = this.buf;
    const end = this.end;
    let pos = this.pos;
    this.keyword = undefined;
    for (;;) {
      while (pos < end && byteClass[buf[pos]] === SPACE) pos++;
      if (pos >= end) {
        if (this.inExecutable) this.unterminated = true;
        this.pos = pos;
        return this.emit(Tok.End, pos, pos);
      }
      const c = buf[pos];
      const c1 = pos + 1 < end ? buf[pos + 1] : 0;
      if (c === 0x2f /* / */ && c1 === 0x2a /* * */) {
        if (pos + 2 < end && buf[pos + 2] === 0x21 /* ! */ && !this.inExecutable) {
          // Executable comment: its body is code. Skip the optional version number.
          this.executableStart = pos;
          pos += 3;
          while (pos < end && buf[pos] >= 0x30 && buf[pos] <= 0x39) pos++;
          this.inExecutable = true;
          continue;
        }
        const close = indexOfCommentEnd(buf, pos + 2, end);
        this.noteHint(pos + 2, close < 0 ? end : close);
        if (close < 0) {
          this.unterminated = true;
          pos = end;
        } else {
          pos = close + 2;
        }
        continue;
      }
      if (c === 0x2a /* * */ && c1 === 0x2f /* / */ && this.inExecutable) {
        this.inExecutable = false;
        pos += 2;
        this.codeEnd = pos;
        continue;
      }
      // `--` starts a comment only when followed by whitespace or a control byte (MySQL rule:
      // `1--1` is arithmetic).
      if ((c === 0x2d /* - */ && c1 === 0x2d && (pos + 2 >= end || buf[pos + 2] <= 0x20)) || c === 0x23 /* # */) {
        let eol = pos + (c === 0x23 ? 1 : 2);
        while (eol < end && buf[eol] !== 0x0a) eol++;
        this.noteHint(pos, eol);
        pos = eol;
        continue;
      }
      const start = pos;
      if (byteClass[c] === WORD) {
        let h = 0;
        let plainAscii = c > 0x39; // keywords never start with a digit
        while (pos < end && byteClass[buf[pos]] === WORD) {
          let b = buf[pos];
          if (b >= 0x41 && b <= 0x5a) b |= 0x20;
          else if (b >= 0x80) plainAscii = false;
          h = (Math.imul(h, 31) + b) | 0;
          pos++;
        }
        this.pos = pos;
        if (plainAscii && pos - start <= MAX_KEYWORD_LENGTH) this.keyword = this.lookupKeyword(h, start, pos);
        return this.emit(Tok.Word, start, pos);
      }
      switch (c) {
        case 0x27: // '
        case 0x22: // "
          pos = this.skipQuoted(start + 1, c, !this.noBackslashEscapes);
          this.pos = pos;
          return this.emit(Tok.String, start, pos);
        case 0x60: // `
          pos = this.skipQuoted(start + 1, c, false);
          this.pos = pos;
          return this.emit(Tok.QuotedIdent, start, pos);
        case 0x40: // @
          if (c1 === 0x40) {
            pos += 2;
            while (pos < end && (byteClass[buf[pos]] === WORD || buf[pos] === 0x2e)) pos++;
            this.pos = pos;
            return this.emit(Tok.SysVar, start, pos);
          }
          pos++;
          if (c1 === 0x27 || c1 === 0x22 || c1 === 0x60) pos = this.skipQuoted(pos + 1, c1, c1 !== 0x60 && !this.noBackslashEscapes);
          else while (pos < end && (byteClass[buf[pos]] === WORD || buf[pos] === 0x2e)) pos++;
          this.pos = pos;
          return this.emit(Tok.UserVar, start, pos);
        case 0x28:
          this.pos = pos + 1;
          return this.emit(Tok.LParen, start, pos + 1);
        case 0x29:
          this.pos = pos + 1;
          return this.emit(Tok.RParen, start, pos + 1);
        case 0x3b:
          this.pos = pos + 1;
          return this.emit(Tok.Semicolon, start, pos + 1);
        case 0x2c:
          this.pos = pos + 1;
          return this.emit(Tok.Comma, start, pos + 1);
        case 0x2e:
          this.pos = pos + 1;
          return this.emit(Tok.Dot, start, pos + 1);
        case 0x3d:
          this.pos = pos + 1;
          return this.emit(Tok.Eq, start, pos + 1);
        case 0x3a:
          if (c1 === 0x3d) {
            this.pos = pos + 2;
            return this.emit(Tok.Assign, start, pos + 2);
          }
          break;
      }
      this.pos = pos + 1;
      return this.emit(Tok.Other, start, pos + 1);
    }
  }

  /** The current token's bytes decoded as UTF-8 (allocates). */
  text(): string {
    return this.slice(this.start, this.stop);
  }

  slice(start: number, stop: number): string {
    return Buffer.from(this.buf.buffer, this.buf.byteOffset + start, stop - start).toString('utf8');
  }

  /** The current token equals `lower` (lower-case ASCII) ignoring ASCII case. */
  is(lower: string): boolean {
    return this.rangeIs(this.start, this.stop, lower);
  }

  rangeIs(start: number, stop: number, lower: string): boolean {
    if (stop - start !== lower.length) return false;
    const buf = this.buf;
    for (let i = 0; i < lower.length; i++) {
      let b = buf[start + i];
      if (b >= 0x41 && b <= 0x5a) b |= 0x20;
      if (b !== lower.charCodeAt(i)) return false;
    }
    return true;
  }

  /** The quoted token's content with its quotes removed and doubled quotes undone (allocates). */
  unquoted(): string {
    const quote = String.fromCharCode(this.buf[this.start]);
    const inner = this.slice(this.start + 1, this.stop - 1);
    return inner.split(quote + quote).join(quote);
  }

  private emit(type: Tok, start: number, stop: number): Tok {
    this.type = type;
    this.start = start;
    this.stop = stop;
    this.tokenInExecutable = this.inExecutable;
    if (type !== Tok.End && type !== Tok.Semicolon) this.codeEnd = stop;
    return type;
  }

  private lookupKeyword(hash: number, start: number, stop: number): Keyword | undefined {
    const bucket = keywordBuckets.get(hash);
    if (bucket === undefined) return undefined;
    for (const kw of bucket) if (this.rangeIs(start, stop, kw)) return kw;
    return undefined;
  }

  /** Scans past a quoted run that opened just before `pos`; returns the index after the close. */
  private skipQuoted(pos: number, quote: number, backslashEscapes: boolean): number {
    const buf = this.buf;
    const end = this.end;
    while (pos < end) {
      const b = buf[pos];
      if (b === 0x5c && backslashEscapes) {
        pos += 2;
      } else if (b === quote) {
        if (pos + 1 < end && buf[pos + 1] === quote) pos += 2; // doubled quote stands for itself
        else return pos + 1;
      } else {
        pos++;
      }
    }
    this.unterminated = true;
    return end;
  }

  /** Looks for `doltgate:primary` / `doltgate:replica` in a comment body [from, to). */
  private noteHint(from: number, to: number): void {
    const buf = this.buf;
    const last = to - HINT_TAG.length - 7;
    for (let i = from; i <= last; i++) {
      if ((buf[i] | 0x20) !== 0x64 /* d */ || !this.rangeIs(i, i + HINT_TAG.length, HINT_TAG)) continue;
      const at = i + HINT_TAG.length;
      if (this.rangeIs(at, at + 7, 'primary')) this.hints |= HINT_PRIMARY;
      else if (this.rangeIs(at, at + 7, 'replica')) this.hints |= HINT_REPLICA;
    }
  }
}

function indexOfCommentEnd(buf: Uint8Array, from: number, end: number): number {
  for (let i = from; i + 1 < end; i++) if (buf[i] === 0x2a && buf[i + 1] === 0x2f) return i;
  return -1;
}
