/** Bounds every job graph must respect; the REST layer and the docs quote them. */
export const MAX_VERTICES = 1000;
export const MAX_NAME_LENGTH = 200;
export const MAX_ARG_LENGTH = 4096;
export const MAX_ENV_VALUE_LENGTH = 32768;
export const MAX_FAIL_MESSAGE_LENGTH = 1000;
export const MAX_SLEEP_MS = 86_400_000;
/** Node's timers overflow above 2^31-1 ms and fire at once, so no delay or timeout may exceed it. */
export const MAX_TIMER_MS = 2_147_483_647;
/** Flink users write Integer.MAX_VALUE to mean "retry forever"; accept it, nothing larger. */
export const MAX_ATTEMPTS = 2_147_483_647;
/** Environment variables the TaskManager sets itself; a graph must not shadow them. */
export const RESERVED_ENV_NAMES: readonly string[] = ['JOB_ID', 'VERTEX_ID', 'SUBTASK_INDEX', 'PARALLELISM', 'ATTEMPT'];
