export * from './errors.ts';
export * from './location.ts';
export * from './open.ts';
export * from './redis-store.ts';
export * from './schedule.ts';
export * from './sqlite-store.ts';
export * from './store.ts';
export * from './view.ts';
