/** Bounded waiting: every loop in the benchmarks ends by count or by deadline. */
export { sleep } from '../../src/util/clock';
export { eventually as until } from '../../src/util/poll';
export { mapLimit } from '../../src/util/concurrency';
