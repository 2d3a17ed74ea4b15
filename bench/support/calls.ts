// A fixed number of calls, a few at a time, for the benchmarks that count per call (instructions,
// bytes allocated) rather than time: how fast they go does not matter, only that each one answers.
import { Pool } from 'undici';

/** `count` GET calls to `url`, `concurrency` at a time; every one must answer 200. */
export async function callsAtOnce(url: string, count: number, concurrency: number): Promise<void> {
  const target = new URL(url);
  const pool = new Pool(target.origin, { connections: concurrency });
  let sent = 0;
  const worker = async (): Promise<void> => {
    while (sent < count) {
      sent++;
      const res = await pool.request({ path: target.pathname + target.search, method: 'GET' });
      await res.body.dump();
      if (res.statusCode !== 200) throw new Error(`${url}: answered ${res.statusCode}`);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  await pool.close();
}
