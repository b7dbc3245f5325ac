/**
 * The agent's watch on its cluster's keys: a hint to run the HA loop at once when the leader,
 * topology, pause or an op changes, instead of waiting out the check interval. It never fails and
 * never stops on its own: it has an etcd client of its own, and when etcd cancels the watch (its
 * token gone, say) that client's stream can attach no other (common/etcd-watch-stream.ts), so it
 * starts over on a new client. Every (re)attach also fires `onChange`, since whatever changed
 * while it was away has not been heard.
 */

import { Etcd3, type IKeyValue, type Watcher } from 'etcd3';
import { disposeWatchClient } from '../../common/etcd-watch-stream';
import type { ClusterKeys } from '../../proto';

export interface DecisionKeyWatchOptions {
  keys: ClusterKeys;
  newClient: () => Etcd3;
  onChange: () => void;
  /** Deadline for cancelling a watcher on stop. */
  timeoutMs: number;
  /** Told each time the watch starts over on a new client. */
  onRenew?: (error: Error) => void;
}

export class DecisionKeyWatch {
  private client: Etcd3;
  private watcher: Watcher | null = null;
  private stopped = false;

  constructor(private readonly options: DecisionKeyWatchOptions) {
    this.client = options.newClient();
    this.open();
  }

  /** Member, history and audit keys change every cycle or only matter to people: not decisions. */
  private relevant(key: Buffer): boolean {
    const k = key.toString();
    const { keys } = this.options;
    return !k.startsWith(keys.membersPrefix) && !k.startsWith(keys.historyPrefix) && !k.startsWith(keys.auditPrefix);
  }

  private open(): void {
    const watcher = this.client.watch().prefix(this.options.keys.prefix).watcher();
    this.watcher = watcher;
    const changed = (kv: IKeyValue): void => {
      if (watcher === this.watcher && this.relevant(kv.key)) this.options.onChange();
    };
    watcher.on('put', changed);
    watcher.on('delete', changed);
    watcher.on('connected', () => {
      if (watcher === this.watcher) this.options.onChange();
    });
    watcher.on('error', (error: Error) => {
      if (watcher !== this.watcher || this.stopped) return;
      this.options.onRenew?.(error);
      const old = this.client;
      this.client = this.options.newClient();
      this.watcher = null;
      void disposeWatchClient(old, [watcher], this.options.timeoutMs);
      this.open();
    });
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    const watcher = this.watcher;
    this.watcher = null;
    await disposeWatchClient(this.client, [watcher], this.options.timeoutMs);
  }
}
