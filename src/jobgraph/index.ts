export * from './types';
export * from './limits';
export { parseJobGraph, parseRestartStrategy, isJobId, generateJobId, JOB_ID_PATTERN } from './parse';
export { canonicalJson, topologicalOrder, findCycle } from './graph';
export { forbiddenEnvNames, isForbiddenEnvName, SECRET_ENV_PREFIX, type EnvValue } from './task-env';
export { resolvePriority, priorityClassOf, DEFAULT_PRIORITY_CLASSES, DEFAULT_PRIORITY_CLASS, type PriorityClasses } from './priority';
