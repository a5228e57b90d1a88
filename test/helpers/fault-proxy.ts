/** The fault proxy lives with the chaos tooling (src/chaos/), which uses it outside tests too. */
export * from '../../src/chaos/fault-proxy';
