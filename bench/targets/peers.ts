// What the Go peers (daprd, Traefik) share: where bench/peers/build.sh put them, at the versions it
// pins, and the Go runtime settings they are measured with. A peer that is not built is reported as
// missing with the command that builds it, never measured as something else.
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export type Peer = 'daprd' | 'traefik';

const VERSIONS = readFileSync(new URL('../peers/versions.env', import.meta.url), 'utf8');

function versionOf(peer: Peer): string {
  const match = new RegExp(`^${peer.toUpperCase()}_VERSION=(\\S+)$`, 'm').exec(VERSIONS);
  if (!match) throw new Error(`bench/peers/versions.env pins no ${peer} version`);
  return match[1]!;
}

function peersDir(): string {
  return process.env.BREAKWATER_PEERS_DIR ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'breakwater', 'peers');
}

export interface Built {
  readonly binary: string;
  readonly version: string;
}

/** The peer's binary at the pinned version, or why it cannot be measured. */
export function findPeer(peer: Peer): Built | string {
  const version = versionOf(peer);
  const binary = join(peersDir(), `${peer}-${version}`, peer);
  const stamp = `${binary}.version`;
  if (existsSync(binary) && existsSync(stamp) && readFileSync(stamp, 'utf8').trim() === version) return { binary, version };
  return `missing: ${peer} ${version} is not built; \`npm run bench:peers\` builds the peers and runs them (or \`bench/peers/build.sh ${peer}\`)`;
}

/**
 * One scheduler thread by default, as nginx runs one worker and Node one event loop; `0` leaves Go's
 * default (one per core) to show what the peer does given the whole machine.
 */
export function goEnv(maxProcs: number): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.GOMAXPROCS;
  return maxProcs > 0 ? { ...env, GOMAXPROCS: String(maxProcs) } : env;
}

export function procsLabel(maxProcs: number): string {
  return maxProcs > 0 ? `GOMAXPROCS=${maxProcs}` : "Go's default GOMAXPROCS";
}

/** The credential breakwater-full adds from a file, added by the peers from their config. */
export const CREDENTIAL = { header: 'Authorization', value: 'Bearer sk_test_benchmark' };
