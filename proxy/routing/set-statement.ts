/**
 * Reads a SET statement item by item, as the classifier's scan feeds it tokens, and decides what
 * the statement does to the session:
 *
 * - session-scoped system variables (`SET x = ..`, `SET SESSION|LOCAL x`, `SET @@x`,
 *   `SET @@session.x`), `SET NAMES`, `SET CHARACTER SET`/`CHARSET`, `SET SESSION TRANSACTION`
 *   and `SET ROLE` are session state: the statement text is replayed on the session's other
 *   backend connections;
 * - `SET GLOBAL|PERSIST|PERSIST_ONLY` (and `@@global.` / `@@persist.`) change the server: they go
 *   to the primary and are never replayed (replaying would reconfigure replicas);
 * - `SET @user = ..` assigns a user variable. The value is an expression evaluated on the server
 *   (`SET @a = (SELECT max(id) FROM t)`, `SET @b = NOW()`), so replaying the text elsewhere would
 *   not reproduce it: the session is pinned to the primary instead;
 * - `SET TRANSACTION ..` without a scope shapes only the next transaction, which runs on the
 *   primary anyway: nothing to replay;
 * - `SET PASSWORD` / `SET DEFAULT ROLE` are writes;
 * - autocommit given as a literal (0/1, ON/OFF, TRUE/FALSE, quoted or not) is reported so the
 *   router can stop sending reads to replicas before the OK packet's status flags say so.
 *
 * A statement mixing kinds that cannot be replayed as a whole (GLOBAL with SESSION items), or a
 * form this reader does not know, pins the session ('unreplayable-set'): safe, never wrong.
 */

import { pinBit, StatementFacts } from './classification';
import { SqlLexer, Tok } from './sql-lexer';

const enum State {
  ItemStart,
  Target,
  AfterName,
  AfterDot,
  Value,
  SkipItem,
  SkipRest,
}

const enum Scope {
  Default,
  Session,
  Global,
}

export class SetStatementReader {
  private state = State.ItemStart;
  private scope = Scope.Default;
  private isAutocommit = false;
  private valueTokens = 0;
  private valueType = Tok.End;
  private valueStart = 0;
  private valueStop = 0;
  private autocommit: boolean | undefined = undefined;
  private autocommitSet = false;
  private sessionItems = 0;
  private names = false;
  private charset = false;
  private role = false;
  private global = false;
  private userVariable = false;
  private nextTransaction = false;
  private write = false;
  private unknown = false;

  reset(): void {
    this.state = State.ItemStart;
    this.scope = Scope.Default;
    this.isAutocommit = false;
    this.valueTokens = 0;
    this.autocommit = undefined;
    this.autocommitSet = false;
    this.sessionItems = 0;
    this.names = this.charset = this.role = false;
    this.global = this.userVariable = this.nextTransaction = this.write = this.unknown = false;
  }

  /** Feeds the lexer's current token; `depth` is the parenthesis depth before it. */
  token(lx: SqlLexer, depth: number): void {
    const t = lx.type;
    if (t === Tok.Comma && depth === 0 && this.state !== State.SkipRest) {
      this.endItem(lx);
      return;
    }
    switch (this.state) {
      case State.ItemStart:
        if (t === Tok.Word && (lx.keyword === 'global' || lx.keyword === 'persist' || lx.keyword === 'persist_only')) {
          this.scope = Scope.Global;
          this.state = State.Target;
          return;
        }
        if (t === Tok.Word && (lx.keyword === 'session' || lx.keyword === 'local')) {
          this.scope = Scope.Session;
          this.state = State.Target;
          return;
        }
        this.target(lx);
        return;
      case State.Target:
        this.target(lx);
        return;
      case State.AfterName:
        if (t === Tok.Eq || t === Tok.Assign) this.state = State.Value;
        else if (t === Tok.Dot) this.state = State.AfterDot;
        else this.unknownItem();
        return;
      case State.AfterDot:
        // A structured variable (`key_cache.key_buffer_size`): never autocommit.
        this.isAutocommit = false;
        if (t === Tok.Word || t === Tok.QuotedIdent) this.state = State.AfterName;
        else this.unknownItem();
        return;
      case State.Value:
        if (this.valueTokens++ === 0) {
          this.valueType = t;
          this.valueStart = lx.start;
          this.valueStop = lx.stop;
        }
        return;
      case State.SkipItem:
      case State.SkipRest:
        return;
    }
  }

  /**
   * Applies what the statement did to `facts`. `text` yields the statement text to replay, or
   * undefined when it cannot be cut out cleanly (it ends inside an executable comment).
   */
  finish(lx: SqlLexer, facts: StatementFacts, text: () => string | undefined): void {
    if (this.state !== State.SkipRest) this.endItem(lx);
    const recognised = this.sessionItems > 0 || this.global || this.userVariable || this.nextTransaction || this.write;
    if (!recognised) this.unknown = true; // `SET` alone, or nothing this reader knows
    if (this.autocommitSet) facts.setsAutocommit = this.autocommit;
    if (this.write) {
      // SET PASSWORD, SET DEFAULT ROLE: account changes, which the proxy refuses (users are per node).
      facts.reason = 'account-management';
      return;
    }
    if (this.global) {
      facts.reason = 'global-set';
      if (this.sessionItems > 0 || this.unknown) facts.pins |= pinBit('unreplayable-set');
      if (this.userVariable) facts.pins |= pinBit('user-variable');
      return;
    }
    if (this.userVariable) {
      // The pin outlives any session item in the same statement, so nothing needs replaying.
      facts.reason = 'user-variable-assignment';
      facts.pins |= pinBit('user-variable');
      if (this.unknown) facts.pins |= pinBit('unreplayable-set');
      return;
    }
    if (this.nextTransaction && this.sessionItems === 0 && !this.unknown) {
      facts.reason = 'transaction-characteristics';
      return;
    }
    facts.reason = this.autocommitSet && this.autocommit === false ? 'autocommit-off' : 'session-set';
    const statement = this.unknown ? undefined : text();
    if (statement === undefined) {
      facts.pins |= pinBit('unreplayable-set');
      return;
    }
    const only = this.sessionItems === 1;
    const kind = only && this.names ? 'names' : only && this.charset ? 'charset' : only && this.role ? 'role' : 'variables';
    facts.sessionState = { kind, statement };
  }

  private target(lx: SqlLexer): void {
    const t = lx.type;
    const kw = lx.keyword;
    if (t === Tok.Word && kw !== undefined) {
      switch (kw) {
        case 'names':
          this.sessionItem();
          this.names = true;
          this.state = State.SkipItem;
          return;
        case 'character':
        case 'charset':
          this.sessionItem();
          this.charset = true;
          this.state = State.SkipItem;
          return;
        case 'transaction':
          if (this.scope === Scope.Global) this.global = true;
          else if (this.scope === Scope.Session) this.sessionItem();
          else this.nextTransaction = true;
          this.state = State.SkipRest; // its characteristics are comma-separated too
          return;
        case 'password':
        case 'default':
          this.write = true;
          this.state = State.SkipRest;
          return;
        case 'role':
          this.sessionItem();
          this.role = true;
          this.state = State.SkipRest;
          return;
      }
    }
    if (t === Tok.Word) {
      this.systemVariable(this.scope, kw === 'autocommit');
      return;
    }
    if (t === Tok.QuotedIdent) {
      this.systemVariable(this.scope, lx.rangeIs(lx.start + 1, lx.stop - 1, 'autocommit'));
      return;
    }
    if (t === Tok.SysVar) {
      // @@name, @@session.name, @@local.name, @@global.name, @@persist.name, @@persist_only.name
      let dot = -1;
      for (let i = lx.start + 2; i < lx.stop; i++) if (lx.rangeIs(i, i + 1, '.')) dot = i;
      let scope = this.scope;
      if (dot >= 0) {
        const from = lx.start + 2;
        if (lx.rangeIs(from, dot, 'global') || lx.rangeIs(from, dot, 'persist') || lx.rangeIs(from, dot, 'persist_only')) scope = Scope.Global;
        else if (lx.rangeIs(from, dot, 'session') || lx.rangeIs(from, dot, 'local')) scope = Scope.Session;
        else {
          this.unknownItem();
          return;
        }
      }
      this.systemVariable(scope, lx.rangeIs(dot >= 0 ? dot + 1 : lx.start + 2, lx.stop, 'autocommit'));
      return;
    }
    if (t === Tok.UserVar) {
      this.userVariable = true;
      this.state = State.SkipItem;
      return;
    }
    this.unknownItem();
  }

  private systemVariable(scope: Scope, isAutocommit: boolean): void {
    if (scope === Scope.Global) this.global = true;
    else this.sessionItem();
    this.isAutocommit = isAutocommit && scope !== Scope.Global;
    this.valueTokens = 0;
    this.state = State.AfterName;
  }

  private sessionItem(): void {
    this.sessionItems++;
  }

  private unknownItem(): void {
    this.unknown = true;
    this.state = State.SkipItem;
  }

  private endItem(lx: SqlLexer): void {
    if (this.state === State.Value && this.isAutocommit) {
      this.autocommitSet = true;
      this.autocommit = this.valueTokens === 1 ? literalBoolean(lx, this.valueType, this.valueStart, this.valueStop) : undefined;
    } else if (this.state === State.AfterName || this.state === State.AfterDot || this.state === State.Target) {
      this.unknown = true; // a name without a value, or a scope without a name
    }
    this.state = State.ItemStart;
    this.scope = Scope.Default;
    this.isAutocommit = false;
    this.valueTokens = 0;
  }
}

/** ON/OFF, TRUE/FALSE, 1/0, bare or quoted; undefined for anything else (DEFAULT, @var, 2). */
function literalBoolean(lx: SqlLexer, type: Tok, start: number, stop: number): boolean | undefined {
  if (type === Tok.String) {
    start++;
    stop--;
  } else if (type !== Tok.Word) {
    return undefined;
  }
  if (lx.rangeIs(start, stop, 'on') || lx.rangeIs(start, stop, 'true') || lx.rangeIs(start, stop, '1')) return true;
  if (lx.rangeIs(start, stop, 'off') || lx.rangeIs(start, stop, 'false') || lx.rangeIs(start, stop, '0')) return false;
  return undefined;
}
