export * from './driver';
export * from './zk-driver';
export * from './service';
export * from './leader-info';
export * from './retrieval';
export * from './contenders';
export * from './trust';
