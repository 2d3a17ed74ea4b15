export * from './admission-webhook.ts';
export * from './certs.ts';
export * from './inject.ts';
export * from './integration-controller.ts';
export * from './leader-election.ts';
export * from './manager.ts';
export * from './metrics.ts';
