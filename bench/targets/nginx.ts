// nginx as a reverse proxy, when the machine has it: the non-Node choice a platform team might make.
// One worker process, as the Node proxies have one event loop; keep-alive to the origin; no access log,
// as a bare passthrough. The config is generated into a temporary directory and nginx runs in the
// foreground as our child, so it stops with the benchmark.
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startChild } from '../support/children.ts';
import { freePort, HOST, waitForOk } from '../support/net.ts';
import { rssBytes } from '../support/proc.ts';
import { ORIGIN_PATH, type Target } from '../support/target.ts';

const CANDIDATES = ['nginx', '/usr/sbin/nginx', '/usr/local/sbin/nginx', '/usr/local/nginx/sbin/nginx'];

function findNginx(): { binary: string; version: string } | undefined {
  for (const binary of CANDIDATES) {
    const probe = spawnSync(binary, ['-v'], { encoding: 'utf8' });
    if (probe.status === 0) return { binary, version: probe.stderr.trim().replace(/^nginx version: /, '') };
  }
  return undefined;
}

function config(dir: string, port: number, originPort: number): string {
  return `daemon off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  upstream origin {
    server ${HOST}:${originPort};
    keepalive 256;
  }
  server {
    listen ${HOST}:${port};
    keepalive_requests 1000000;
    location / {
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`;
}

/** Starts nginx, or returns why it was skipped. */
export async function startNginx(originPort: number, tmp: string): Promise<Target | string> {
  const found = findNginx();
  if (!found) return 'skipped: nginx not installed';
  const dir = join(tmp, 'nginx');
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const file = join(dir, 'nginx.conf');
  writeFileSync(file, config(dir, port, originPort));
  const child = startChild('nginx', found.binary, ['-e', join(dir, 'error.log'), '-p', dir, '-c', file]);
  const url = `http://${HOST}:${port}${ORIGIN_PATH}`;
  await waitForOk(url, 10_000, () => child.process.exitCode === null);
  return {
    name: 'nginx',
    description: `${found.version}, 1 worker, upstream keepalive 256, access log off`,
    url,
    child,
    idleRssBytes: rssBytes(child.pid),
  };
}
