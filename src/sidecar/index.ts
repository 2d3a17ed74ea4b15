export * from './config.ts';
export * from './options.ts';
export * from './sidecar.ts';
