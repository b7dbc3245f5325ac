/**
 * What an agent must remember across its own restarts: the role its node had and the newest epoch
 * it acted on. An old primary that reboots must still know it was primary, or it would rejoin
 * without saving the commits the remote lacks. Written atomically (temp file + rename).
 */

import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { NodeRole } from '../proto';

export interface NodeState {
  role: NodeRole;
  epoch: number;
  /** The epoch at which this node last was primary; names its orphan branches on rejoin. */
  primaryEpoch: number | null;
}

export const initialNodeState: NodeState = { role: 'replica', epoch: 0, primaryEpoch: null };

export class NodeStateFile {
  readonly path: string;

  constructor(nodeDir: string) {
    this.path = join(nodeDir, 'doltgate-agent-state.json');
  }

  read(): NodeState {
    try {
      const value = JSON.parse(readFileSync(this.path, 'utf8')) as Partial<NodeState>;
      return {
        role: value.role ?? initialNodeState.role,
        epoch: typeof value.epoch === 'number' ? value.epoch : 0,
        primaryEpoch: typeof value.primaryEpoch === 'number' ? value.primaryEpoch : null,
      };
    } catch {
      return { ...initialNodeState };
    }
  }

  write(state: NodeState): void {
    const temp = `${this.path}.tmp`;
    writeFileSync(temp, JSON.stringify(state));
    renameSync(temp, this.path);
  }
}
