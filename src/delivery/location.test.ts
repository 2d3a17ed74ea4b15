import { describe, expect, it } from 'vitest';
import { StoreUrlError } from './errors.ts';
import { parseStoreUrl } from './location.ts';

describe('parseStoreUrl', () => {
  it('reads sqlite: paths and redis:// URLs', () => {
    expect(parseStoreUrl('sqlite:', '/data')).toEqual({ kind: 'sqlite', path: '/data/deliveries.sqlite' });
    expect(parseStoreUrl('sqlite:///var/x.sqlite', '/data')).toEqual({ kind: 'sqlite', path: '/var/x.sqlite' });
    expect(parseStoreUrl('redis://:pw@redis.shop:6380/2', '/data')).toEqual({ kind: 'redis', url: 'redis://:pw@redis.shop:6380/2' });
    expect(parseStoreUrl('rediss://redis.shop', '/data', 'secret')).toEqual({ kind: 'redis', url: 'rediss://redis.shop', password: 'secret' });
  });

  it('refuses what the Redis client would throw a TypeError for, without the password', () => {
    for (const url of ['redis://127.0.0.1:abc', 'redis://:pw@127.0.0.1:1/x', 'redis://', 'redis:///0', 'mysql://db', 'sqlite']) {
      expect(() => parseStoreUrl(url, '/data')).toThrow(StoreUrlError);
    }
    expect(() => parseStoreUrl('redis://:hunter2@127.0.0.1:1/x', '/data')).toThrow(/"redis:\/\/:\*\*\*@127\.0\.0\.1:1\/x" is not a delivery store URL/);
  });
});
