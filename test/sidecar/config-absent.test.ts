// A pod in a namespace without integrations has no ConfigMap to mount: its sidecar starts with no
// config file, is ready, says why a name is unknown, and serves integrations once they are created.
// Before this, the sidecar exited 64 on the missing file, and as a native sidecar kept the app from
// starting.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startUpstream, type ScriptedUpstream } from '../support/upstream.ts';
import { docs, eventually, integration, startHarness, type Harness } from './harness.ts';

describe('a sidecar started before its config exists', () => {
  let vendor: ScriptedUpstream;
  let h: Harness;

  beforeAll(async () => {
    vendor = await startUpstream();
    h = await startHarness(undefined);
  });
  afterAll(async () => {
    await h.close();
    await vendor.close();
  });

  it('is ready, answers 404 unknown_integration saying none is configured, and serves the file once it appears', async () => {
    expect((await h.readyz()).status).toBe(200);
    const before = await h.call('/stripe/v1/charges');
    expect(before.status).toBe(404);
    expect(before.json()).toEqual({
      error: 'unknown_integration',
      integration: 'stripe',
      message:
        'no integration named "stripe": none is configured yet (no valid ExternalIntegration in this namespace, or the config has not reached the pod yet)',
    });
    expect(h.logs).toContainEqual(expect.objectContaining({ msg: 'config file does not exist yet; serving no integration until it does' }));

    await h.writeConfig(integration('stripe', { upstream: { url: vendor.url } }));
    await eventually(async () => expect((await h.call('/stripe/v1/charges')).status).toBe(200));
    expect(vendor.requests.at(-1)!.url).toBe('/v1/charges');
  });

  it('treats an empty file as no integrations, not as an error', async () => {
    await h.writeConfig('');
    await eventually(async () => expect((await h.call('/stripe/x')).status).toBe(404));
    expect((await h.readyz()).status).toBe(200);
    expect(await h.metrics()).toMatch(/breakwater_config_reloads_total\{result="failure"\} 0|^(?![\s\S]*result="failure")/);
  });
});

describe('a pod that names its integrations', () => {
  let vendor: ScriptedUpstream;
  let h: Harness;

  beforeAll(async () => {
    vendor = await startUpstream();
    h = await startHarness(integration('stripe', { upstream: { url: vendor.url } }), { integrations: ['stripe', 'courier'] });
  });
  afterAll(async () => {
    await h.close();
    await vendor.close();
  });

  it('serves a named integration created after the pod, and says which names the pod did not select', async () => {
    const notYet = await h.call('/courier/parcels');
    expect(notYet.status).toBe(404);
    expect(notYet.json().message).toBe('no integration named "courier"; known: stripe');

    const other = await h.call('/email/send');
    expect(other.json().message).toBe(
      'integration "email" is not selected for this pod; it serves stripe, courier (pod annotation breakwater.dev/integrations)',
    );

    await h.writeConfig(
      docs(
        integration('stripe', { upstream: { url: vendor.url } }),
        integration('courier', { upstream: { url: vendor.url } }),
        integration('email', { upstream: { url: vendor.url } }),
      ),
    );
    await eventually(async () => expect((await h.call('/courier/parcels')).status).toBe(200));
    expect((await h.call('/email/send')).status).toBe(404);
  });
});
