export * from './admin-server.ts';
export * from './flags.ts';
export * from './logger.ts';
export * from './metrics.ts';
export * from './shutdown.ts';
export * from './version.ts';
