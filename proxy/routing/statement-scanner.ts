/**
 * Reads one statement of a query from the shared lexer and records what it is in a
 * StatementFacts: the head (leading keywords) names the statement and sets the scan's modes; the
 * tail walks the remaining tokens up to the `;` that ends the statement (one outside BEGIN/CASE ..
 * END blocks, inside a routine definition) looking for what binds the statement to the primary or
 * to this session. The policy it implements is described in classifier.ts; this file is the
 * mechanics. One scanner is reused for every statement; `scan` resets all of its state.
 */

import type { ClassifierOptions } from './classification';
import { pinBit, StatementFacts } from './classification';
import { SetStatementReader } from './set-statement';
import { Keyword, SqlLexer, Tok } from './sql-lexer';

const NO_OPTIONS: ClassifierOptions = Object.freeze({});
const setReader = new SetStatementReader();

type WriteKeyword = 'insert' | 'update' | 'delete' | 'replace';

function isWriteHead(kw: Keyword | undefined): kw is WriteKeyword {
  return kw === 'insert' || kw === 'update' || kw === 'delete' || kw === 'replace';
}

function isQueryHead(kw: Keyword | undefined): boolean {
  return kw === 'select' || kw === 'with' || kw === 'table' || kw === 'values' || isWriteHead(kw);
}

const OBJECT_TYPES: ReadonlySet<Keyword | undefined> = new Set<Keyword>([
  'table', 'view', 'index', 'database', 'schema', 'user', 'role', 'procedure', 'function', 'trigger', 'event',
]);

/** Scans one statement: the head names it, the tail looks through the rest. */
export class StatementScanner {
  private lx!: SqlLexer;
  private options: ClassifierOptions = NO_OPTIONS;
  private f = new StatementFacts();
  /** Refine as a read: FOR UPDATE, LOCK IN SHARE MODE, INTO. */
  private selectLike = false;
  /** WITH: the main statement after the CTEs may be UPDATE or DELETE. */
  private withMode = false;
  /** Inside a routine definition: `;` ends the statement only outside BEGIN/CASE .. END. */
  private routine = false;
  /** Look for functions, variables and assignments that bind the statement to the primary. */
  private effects = true;
  private setMode = false;
  private useMode = false;
  private depth = 0;
  private blockDepth = 0;
  private pendingEnd = false;
  private afterInto = false;
  private prevType = Tok.End;
  private prevKw: Keyword | undefined = undefined;
  private prevStart = 0;
  private prevStop = 0;
  private textStart = 0;
  private useArgType = Tok.End;
  private useArgStart = 0;
  private useArgName = '';

  scan(lx: SqlLexer, options: ClassifierOptions): StatementFacts | undefined {
    this.lx = lx;
    this.options = options;
    const boundary = lx.type === Tok.Semicolon ? lx.stop : 0;
    let t = lx.next();
    // A statement that starts inside an executable comment opened before the previous `;` cannot
    // be cut out as text of its own (-1: not replayable).
    if (!lx.tokenInExecutable) this.textStart = lx.start;
    else this.textStart = lx.executableStart >= boundary ? lx.executableStart : -1;
    let parens = 0;
    while (t === Tok.LParen) {
      parens++;
      t = lx.next();
    }
    if ((t === Tok.End || t === Tok.Semicolon) && parens === 0) return undefined;
    this.f = new StatementFacts();
    this.selectLike = this.withMode = this.routine = this.setMode = this.useMode = false;
    this.effects = true;
    this.depth = this.blockDepth = 0;
    this.pendingEnd = this.afterInto = false;
    this.prevType = Tok.End;
    this.prevKw = undefined;
    this.head(t === Tok.Word ? lx.keyword : undefined);
    this.tail();
    if (this.setMode) setReader.finish(lx, this.f, () => this.statementText());
    if (this.useMode) this.finishUse();
    return this.f;
  }

  /** Moves to the next token unless the statement has ended; returns the current type. */
  private advance(): Tok {
    const t = this.lx.type;
    return t === Tok.End || t === Tok.Semicolon ? t : this.lx.next();
  }

  private advanceKeyword(): Keyword | undefined {
    return this.advance() === Tok.Word ? this.lx.keyword : undefined;
  }

  private head(kw: Keyword | undefined): void {
    const f = this.f;
    switch (kw) {
      case 'select':
      case 'table':
      case 'values':
      case 'with':
        f.set('select', 'replica', 'read');
        this.selectLike = true;
        this.withMode = kw === 'with';
        this.advance();
        return;
      case 'show': {
        f.set('show', 'replica', 'read');
        this.effects = false;
        const next = this.advanceKeyword();
        if (next === 'warnings' || next === 'errors' || next === 'count' || next === 'profile' || next === 'profiles') {
          f.set('show', 'primary', 'diagnostics');
          f.followsPrevious = true;
        }
        return;
      }
      case 'describe':
      case 'desc':
      case 'explain':
        f.set('explain', 'replica', 'read');
        this.effects = false;
        if (this.advanceKeyword() === 'analyze') this.explainAnalyze();
        return;
      case 'help':
        f.set('other', 'replica', 'read');
        this.effects = false;
        this.advance();
        return;
      case 'insert':
      case 'update':
      case 'delete':
      case 'replace':
        f.set(kw, 'primary', 'write');
        this.advance();
        return;
      case 'load':
      case 'import':
        f.set('load', 'primary', 'write');
        this.advance();
        return;
      case 'do':
        // DO exists for its side effects (GET_LOCK, stored functions); a replica gains nothing.
        f.set('do', 'primary', 'write');
        this.advance();
        return;
      case 'create':
      case 'alter':
      case 'drop':
      case 'rename':
      case 'truncate':
        this.ddl(kw);
        return;
      case 'call':
        this.call();
        return;
      case 'begin':
        f.set('begin', 'primary', 'transaction-start');
        f.startsTransaction = true;
        this.advance();
        return;
      case 'start':
        if (this.advanceKeyword() === 'transaction') {
          f.set('begin', 'primary', 'transaction-start');
          f.startsTransaction = true;
        } else {
          f.set('admin', 'primary', 'admin'); // START REPLICA, START GROUP_REPLICATION
        }
        return;
      case 'commit':
        f.set('commit', 'primary', 'transaction-end');
        f.endsTransaction = true;
        this.chain(this.advanceKeyword());
        return;
      case 'rollback': {
        let next = this.advanceKeyword();
        if (next === 'work') next = this.advanceKeyword();
        if (next === 'to') {
          f.set('rollback', 'primary', 'savepoint'); // ROLLBACK TO SAVEPOINT keeps the transaction
          return;
        }
        f.set('rollback', 'primary', 'transaction-end');
        f.endsTransaction = true;
        this.chain(next);
        return;
      }
      case 'savepoint':
      case 'release':
        f.set('savepoint', 'primary', 'savepoint');
        this.advance();
        return;
      case 'set':
        f.set('set', 'primary', 'session-set');
        this.setMode = true;
        setReader.reset();
        this.advance();
        return;
      case 'use':
        f.set('use', 'primary', 'use');
        this.useMode = true;
        this.effects = false;
        this.useArgType = this.advance();
        this.useArgStart = this.lx.start;
        this.useArgName = this.useArgType === Tok.QuotedIdent ? this.lx.unquoted() : '';
        return;
      case 'lock':
      case 'unlock': {
        const next = this.advanceKeyword();
        if (next === 'tables' || next === 'table') {
          f.set(kw, 'primary', 'lock-tables');
          if (kw === 'lock') f.pins |= pinBit('lock-tables');
          else f.unpins |= pinBit('lock-tables');
        } else {
          f.set('admin', 'primary', 'admin'); // LOCK INSTANCE FOR BACKUP
        }
        return;
      }
      case 'handler':
        f.set('handler', 'primary', 'handler');
        f.pins |= pinBit('handler');
        this.advance();
        return;
      case 'prepare':
      case 'execute':
      case 'deallocate':
        f.set('prepare', 'primary', 'prepared-statement');
        if (kw === 'prepare') f.pins |= pinBit('prepared-statement');
        this.advance();
        return;
      case 'xa': {
        const next = this.advanceKeyword();
        f.set('xa', 'primary', 'xa');
        if (next === 'start' || next === 'begin') f.startsTransaction = true;
        else if (next === 'commit' || next === 'rollback') f.endsTransaction = true;
        return;
      }
      case 'get': {
        const next = this.advanceKeyword();
        if (next === 'diagnostics' || next === 'current' || next === 'stacked') {
          f.set('other', 'primary', 'diagnostics');
          f.followsPrevious = true;
        }
        return;
      }
      case 'grant': case 'revoke':
        f.set('admin', 'primary', 'account-management');
        this.effects = false;
        this.advance();
        return;
      case 'flush': case 'kill': case 'reset': case 'purge':
      case 'change': case 'stop': case 'install': case 'uninstall': case 'shutdown': case 'restart':
      case 'clone': case 'optimize': case 'repair': case 'check': case 'checksum': case 'analyze':
      case 'cache': case 'binlog':
        f.set('admin', 'primary', 'admin');
        this.effects = false;
        this.advance();
        return;
      default:
        // Unknown: primary (StatementFacts' default); the tail still looks for pins.
        return;
    }
  }

  /** EXPLAIN ANALYZE runs the statement it explains, so it is classified like that statement. */
  private explainAnalyze(): void {
    this.effects = true;
    let t = this.advance();
    while (t !== Tok.End && t !== Tok.Semicolon && !(t === Tok.Word && isQueryHead(this.lx.keyword))) t = this.advance();
    const kw = t === Tok.Word ? this.lx.keyword : undefined;
    if (isWriteHead(kw)) {
      this.f.set('explain', 'primary', 'write');
    } else {
      this.selectLike = true;
      this.withMode = kw === 'with';
    }
  }

  /** COMMIT / ROLLBACK [WORK] [AND [NO] CHAIN]: AND CHAIN opens the next transaction at once. */
  private chain(next: Keyword | undefined): void {
    if (next === 'work') next = this.advanceKeyword();
    if (next === 'and' && this.advanceKeyword() === 'chain') this.f.startsTransaction = true;
  }

  private ddl(kw: 'create' | 'alter' | 'drop' | 'rename' | 'truncate'): void {
    const f = this.f;
    const lx = this.lx;
    f.set('ddl', 'primary', 'ddl');
    let t = this.advance();
    if (kw === 'rename' && t === Tok.Word && lx.keyword === 'user') f.reason = 'account-management';
    if (kw === 'rename' || kw === 'truncate') return;
    // Modifiers (OR REPLACE, TEMPORARY, DEFINER = .., ALGORITHM = .., UNIQUE) precede the type.
    let temporary = false;
    let objectType: Keyword | undefined;
    for (let i = 0; i < 24 && t !== Tok.End && t !== Tok.Semicolon && t !== Tok.LParen; i++) {
      if (t === Tok.Word) {
        if (lx.keyword === 'temporary') temporary = true;
        else if (OBJECT_TYPES.has(lx.keyword)) {
          objectType = lx.keyword;
          break;
        }
      }
      t = this.advance();
    }
    if (objectType === 'user' || objectType === 'role') f.reason = 'account-management';
    if (objectType === 'table' && temporary) {
      f.reason = 'temporary-table';
      if (kw === 'create') f.pins |= pinBit('temporary-table');
    }
    const routine = objectType === 'procedure' || objectType === 'function' || objectType === 'trigger' || objectType === 'event';
    if (routine && kw !== 'drop') {
      this.routine = true;
      this.effects = false;
    }
  }

  private call(): void {
    const f = this.f;
    const lx = this.lx;
    f.set('call', 'primary', 'call');
    let t = this.advance();
    let name = '';
    let last = '';
    while (t === Tok.Word || t === Tok.QuotedIdent) {
      last = (t === Tok.Word ? lx.text() : lx.unquoted()).toLowerCase();
      name = name === '' ? last : `${name}.${last}`;
      if (this.advance() !== Tok.Dot) break;
      t = this.advance();
    }
    if (last === '') {
      f.reason = 'unknown';
      return;
    }
    if (last === 'dolt_checkout') f.pins |= pinBit('branch-checkout');
    const readOnly = this.options.readOnlyProcedures;
    if (readOnly !== undefined && f.pins === 0 && (readOnly.has(name) || readOnly.has(last))) {
      f.set('call', 'replica', 'read-only-procedure');
      return;
    }
    f.soft = !last.startsWith('dolt_');
  }

  private tail(): void {
    const lx = this.lx;
    for (;;) {
      const t = lx.type;
      if (this.pendingEnd) {
        // END closes BEGIN or CASE unless it is END IF / END LOOP / END WHILE / END REPEAT.
        this.pendingEnd = false;
        const kw = t === Tok.Word ? lx.keyword : undefined;
        if (kw !== 'if' && kw !== 'loop' && kw !== 'while' && kw !== 'repeat' && this.blockDepth > 0) this.blockDepth--;
      }
      if (t === Tok.End || (t === Tok.Semicolon && this.blockDepth === 0)) return;
      this.observe(t);
      lx.next();
    }
  }

  private observe(t: Tok): void {
    const lx = this.lx;
    const f = this.f;
    const afterInto = this.afterInto;
    this.afterInto = false;
    if (this.setMode) setReader.token(lx, this.depth);
    switch (t) {
      case Tok.LParen:
        if (this.effects && this.prevType === Tok.Word) this.functionCall();
        this.depth++;
        break;
      case Tok.RParen:
        if (this.depth > 0) this.depth--;
        break;
      case Tok.Word:
        if (lx.keyword !== undefined) this.word(lx.keyword);
        break;
      case Tok.Assign:
        if (this.effects && this.prevType === Tok.UserVar) {
          f.finding('user-variable-assignment');
          f.pins |= pinBit('user-variable');
        }
        break;
      case Tok.UserVar:
        if (afterInto) f.pins |= pinBit('user-variable'); // SELECT .. INTO @var
        break;
      case Tok.SysVar:
        if (this.effects) this.systemVariable();
        break;
      default:
        break;
    }
    this.prevType = t;
    this.prevKw = t === Tok.Word ? lx.keyword : undefined;
    this.prevStart = lx.start;
    this.prevStop = lx.stop;
  }

  private word(kw: Keyword): void {
    const f = this.f;
    if (this.routine) {
      if (kw === 'begin' || kw === 'case') this.blockDepth++;
      else if (kw === 'end') this.pendingEnd = true;
      return;
    }
    if (this.withMode && this.depth === 0 && isWriteHead(kw) && !(kw === 'update' && this.prevKw === 'for')) {
      // WITH .. UPDATE / DELETE: the CTEs were reads, the statement is not.
      this.withMode = false;
      this.selectLike = false;
      f.set(kw, 'primary', 'write');
      return;
    }
    if (!this.selectLike) return;
    if ((kw === 'update' || kw === 'share') && this.prevKw === 'for') f.finding('locking-read');
    else if (kw === 'in' && this.prevKw === 'lock') f.finding('locking-read');
    else if (kw === 'into') {
      f.finding('select-into');
      this.afterInto = true;
    }
  }

  /** A word followed by `(`: a call of that function. */
  private functionCall(): void {
    const f = this.f;
    const kw = this.prevKw;
    switch (kw) {
      case 'get_lock':
        f.finding('lock-function');
        f.pins |= pinBit('advisory-lock');
        return;
      case 'release_lock':
      case 'release_all_locks':
      case 'is_free_lock':
      case 'is_used_lock':
        f.finding('lock-function');
        return;
      case 'last_insert_id':
      case 'last_insert_uuid':
        f.finding('last-insert-id');
        return;
      case 'found_rows':
      case 'row_count':
        f.finding('session-function', true);
        return;
      default:
        if (kw !== undefined && kw.startsWith('dolt_')) {
          f.finding('dolt-write-function');
          if (kw === 'dolt_checkout') f.pins |= pinBit('branch-checkout');
          return;
        }
    }
    const writeFunctions = this.options.writeFunctions;
    if (writeFunctions !== undefined && writeFunctions.size > 0 && writeFunctions.has(this.lx.slice(this.prevStart, this.prevStop).toLowerCase())) {
      f.finding('write-function');
    }
  }

  /** Reads of @@warning_count / @@error_count follow the previous statement; @@identity is the primary's. */
  private systemVariable(): void {
    const lx = this.lx;
    let from = lx.start + 2;
    for (let i = from; i < lx.stop; i++) if (lx.rangeIs(i, i + 1, '.')) from = i + 1;
    if (lx.rangeIs(from, lx.stop, 'warning_count') || lx.rangeIs(from, lx.stop, 'error_count')) this.f.finding('session-function', true);
    else if (lx.rangeIs(from, lx.stop, 'identity') || lx.rangeIs(from, lx.stop, 'last_insert_id')) this.f.finding('last-insert-id');
  }

  /** The statement's text for replay, or undefined when it cannot be cut out whole. */
  private statementText(): string | undefined {
    const lx = this.lx;
    if (this.textStart < 0 || lx.insideExecutable || lx.unterminated || lx.codeEnd <= this.textStart) return undefined;
    return lx.slice(this.textStart, lx.codeEnd);
  }

  private finishUse(): void {
    const t = this.useArgType;
    if (t === Tok.End || t === Tok.Semicolon) return; // `USE` alone fails on the server
    const statement = this.statementText();
    if (statement === undefined) {
      this.f.pins |= pinBit('unreplayable-set');
      return;
    }
    // The name runs from the first to the last token after USE (Dolt allows `db/branch` unquoted).
    const single = this.prevStart === this.useArgStart;
    const database = single && t === Tok.QuotedIdent ? this.useArgName : this.lx.slice(this.useArgStart, this.prevStop);
    this.f.sessionState = { kind: 'database', statement, database };
  }
}
