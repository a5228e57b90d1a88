/** The shape of `bench/results/*.json`: one record per scenario, with its targets checked. */
import type { LocalEnsemble } from '../../src/ensemble/local-ensemble';
import type { Environment } from './environment';

export type Mode = 'full' | 'smoke';

export interface Target {
  id: string;
  description: string;
  /** The measured figure the target is about (null when it could not be measured). */
  value: number | null;
  comparison: '<=' | '>=' | '==';
  limit: number;
  unit: string;
  met: boolean | null;
}

export type ScenarioStatus = 'ok' | 'blocked' | 'error';

export interface ScenarioResult {
  name: ScenarioName;
  title: string;
  status: ScenarioStatus;
  /** Why the scenario is blocked or failed. */
  error?: string;
  durationMs: number;
  /** Sizes and settings the scenario ran with. */
  settings: Record<string, unknown>;
  /** Headline figures (milliseconds unless the key says otherwise). */
  summary: Record<string, unknown>;
  /** Per-trial figures, where the scenario has trials. */
  trials: Array<Record<string, unknown>>;
  targets: Target[];
  notes: string[];
  /**
   * The run this result came from, when it was merged into another run's results (`--merge`): its
   * start (ISO), command and load average at its start.
   */
  run?: { startedAt: string; command: string; loadAverage1m: number };
}

/** A whole run: what `bench/results/*.json` holds. */
export interface BenchResults {
  schemaVersion: 1;
  mode: Mode;
  startedAt: string;
  finishedAt: string;
  durationMs: number;
  command: string;
  environment: Environment;
  scenarios: ScenarioResult[];
}

export const SCENARIOS = ['failover', 'throughput', 'recovery', 'redirect', 'herd', 'memory', 'execution', 'scale', 'session-timeout', 'haproxy'] as const;
export type ScenarioName = (typeof SCENARIOS)[number];

export interface BenchContext {
  mode: Mode;
  /** `--large`: full mode with the larger steps of scenarios that have them (scale). */
  large: boolean;
  ensemble: LocalEnsemble;
  connect: string;
  /** Logs of every process the scenario starts. */
  logDir: string;
  /** Progress lines for the operator (stdout). */
  log(message: string): void;
  /** Registers cleanup (stop processes, close clients) that runs when the scenario ends, even on timeout. */
  defer(cleanup: () => Promise<void> | void): void;
}

/** What a scenario returns; the runner adds name, title, status and duration. */
export type ScenarioOutput = Pick<ScenarioResult, 'settings' | 'summary' | 'trials' | 'targets' | 'notes'>;

export interface Scenario {
  name: ScenarioName;
  title: string;
  /** Upper bound of the scenario's run time; the runner gives up after it. */
  budgetMs(mode: Mode): number;
  run(ctx: BenchContext): Promise<ScenarioOutput>;
}

/** Thrown by a scenario that cannot run because a part of the product is not usable yet. */
export class BlockedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BlockedError';
  }
}

export function target(id: string, description: string, value: number | null, comparison: Target['comparison'], limit: number, unit: string): Target {
  const met = value === null ? null
    : comparison === '<=' ? value <= limit
      : comparison === '>=' ? value >= limit
        : value === limit;
  return { id, description, value, comparison, limit, unit, met };
}
