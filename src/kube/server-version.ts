// The API server's version, for features that depend on it (native sidecars from 1.29).
import type { VersionInfo } from '@kubernetes/client-node';
import type { KubeClient } from './client.ts';

export interface ServerVersion {
  readonly major: number;
  readonly minor: number;
  readonly gitVersion: string;
}

export async function serverVersion(client: KubeClient): Promise<ServerVersion> {
  const info = await client.getJson<VersionInfo>('/version');
  // Managed clusters report minors like "29+".
  return { major: Number.parseInt(info.major, 10), minor: Number.parseInt(info.minor, 10), gitVersion: info.gitVersion };
}
