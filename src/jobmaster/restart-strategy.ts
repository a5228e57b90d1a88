/**
 * Restart strategies with Flink's names and meaning. Each failure event (a task failing, or a lost
 * TaskManager taking several tasks with it) is one call to `onFailure`; the answer is the delay before
 * the failed subtasks run again, or why the job must fail. The state is a plain object so the
 * JobMaster can persist it with the job's progress: a new leader continues the count, it does not
 * grant a fresh budget of restarts.
 */
import type { RestartStrategyConfig } from '../jobgraph/types';

export type RestartDecision = { restart: true; delayMs: number } | { restart: false; reason: string };

export type { RestartState } from '../jobgraph/job-state';
export { emptyRestartState } from '../jobgraph/job-state';
import { emptyRestartState, RestartState } from '../jobgraph/job-state';

export interface RestartStrategy {
  readonly config: RestartStrategyConfig;
  onFailure(now: number): RestartDecision;
  snapshot(): RestartState;
}

/** Flink's `restart-strategy.exponential-delay.reset-backoff-threshold` default: a quiet hour resets the backoff. */
export const EXPONENTIAL_RESET_THRESHOLD_MS = 3_600_000;


export function createRestartStrategy(config: RestartStrategyConfig, state: RestartState = emptyRestartState()): RestartStrategy {
  const s: RestartState = { ...emptyRestartState(), ...state, failureTimes: [...(state.failureTimes ?? [])] };
  const snapshot = (): RestartState => ({ ...s, failureTimes: [...s.failureTimes] });
  switch (config.type) {
    case 'none':
      return {
        config, snapshot,
        onFailure(now) {
          s.lastFailureAt = now;
          return { restart: false, reason: 'restart strategy "none" allows no restarts' };
        },
      };
    case 'fixed-delay':
      return {
        config, snapshot,
        onFailure(now) {
          s.lastFailureAt = now;
          if (s.restarts >= config.attempts) {
            return { restart: false, reason: `restart strategy "fixed-delay" used all ${config.attempts} restart attempts` };
          }
          s.restarts++;
          return { restart: true, delayMs: config.delayMs };
        },
      };
    case 'exponential-delay':
      return {
        config, snapshot,
        onFailure(now) {
          if (s.lastFailureAt !== null && now - s.lastFailureAt >= EXPONENTIAL_RESET_THRESHOLD_MS) {
            s.restarts = 0;
            s.lastBackoffMs = null;
          }
          s.lastFailureAt = now;
          if (config.attempts !== undefined && s.restarts >= config.attempts) {
            return { restart: false, reason: `restart strategy "exponential-delay" used all ${config.attempts} restart attempts` };
          }
          const delayMs = s.lastBackoffMs === null
            ? config.initialBackoffMs
            : Math.min(config.maxBackoffMs, Math.round(s.lastBackoffMs * config.backoffMultiplier));
          s.lastBackoffMs = delayMs;
          s.restarts++;
          return { restart: true, delayMs };
        },
      };
    case 'failure-rate':
      return {
        config, snapshot,
        onFailure(now) {
          s.lastFailureAt = now;
          s.failureTimes = s.failureTimes.filter((t) => now - t < config.failureRateIntervalMs);
          s.failureTimes.push(now);
          if (s.failureTimes.length > config.maxFailuresPerInterval) {
            return {
              restart: false,
              reason: `restart strategy "failure-rate": ${s.failureTimes.length} failures within ${config.failureRateIntervalMs} ms exceed the limit of ${config.maxFailuresPerInterval}`,
            };
          }
          s.restarts++;
          return { restart: true, delayMs: config.delayMs };
        },
      };
  }
}

export function describeStrategy(config: RestartStrategyConfig): string {
  switch (config.type) {
    case 'none': return 'none';
    case 'fixed-delay': return `fixed-delay (${config.attempts} attempts, ${config.delayMs} ms apart)`;
    case 'exponential-delay':
      return `exponential-delay (${config.initialBackoffMs} ms × ${config.backoffMultiplier} up to ${config.maxBackoffMs} ms` +
        `${config.attempts === undefined ? '' : `, ${config.attempts} attempts`})`;
    case 'failure-rate': return `failure-rate (at most ${config.maxFailuresPerInterval} failures per ${config.failureRateIntervalMs} ms, ${config.delayMs} ms apart)`;
  }
}
