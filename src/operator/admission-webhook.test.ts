import { describe, expect, it } from 'vitest';
import { subjectNames, webhookUrl } from './admission-webhook.ts';

describe('webhookUrl', () => {
  it('adds /mutate-pods to a bare --webhook-url and keeps an explicit path', () => {
    expect(webhookUrl('https://127.0.0.1:9443').href).toBe('https://127.0.0.1:9443/mutate-pods');
    expect(webhookUrl('https://127.0.0.1:9443/').href).toBe('https://127.0.0.1:9443/mutate-pods');
    expect(webhookUrl('https://dev.local:9443/hooks/pods').href).toBe('https://dev.local:9443/hooks/pods');
  });
});

describe('subjectNames', () => {
  const service = [
    'breakwater-webhook',
    'breakwater-webhook.ops',
    'breakwater-webhook.ops.svc',
    'breakwater-webhook.ops.svc.cluster.local',
  ];

  it('names the webhook Service in the operator namespace', () => {
    expect(subjectNames('ops', undefined)).toEqual({ dnsNames: service, ipAddresses: [] });
  });

  it('adds an IP SAN for a URL with an IP host, which the API server requires for it', () => {
    expect(subjectNames('ops', new URL('https://127.0.0.1:9443'))).toEqual({ dnsNames: service, ipAddresses: ['127.0.0.1'] });
    expect(subjectNames('ops', new URL('https://[::1]:9443'))).toEqual({ dnsNames: service, ipAddresses: ['::1'] });
  });

  it('adds a DNS SAN for a URL with a host name', () => {
    expect(subjectNames('ops', new URL('https://localhost:9443'))).toEqual({ dnsNames: [...service, 'localhost'], ipAddresses: [] });
  });
});
