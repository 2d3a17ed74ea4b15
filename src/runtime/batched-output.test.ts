import { execFileSync } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync, readFileSync, readSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BatchedOutput, type BatchedOutputOptions } from './batched-output.ts';

describe('BatchedOutput', () => {
  let dir: string;
  const outputs: BatchedOutput[] = [];
  const open = (options: Partial<BatchedOutputOptions> & { fd: number }) => {
    const out = new BatchedOutput({ batchChars: 100, flushEveryMs: 60_000, maxPendingBytes: 1 << 20, ...options });
    outputs.push(out);
    return out;
  };

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'breakwater-output-'));
  });
  afterEach(() => {
    for (const out of outputs.splice(0)) out.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('holds lines until a batch is full, then writes the batch whole and in order', () => {
    const file = join(dir, 'log');
    // 36 characters a line: three stay below the batch, the fourth fills it.
    const out = open({ fd: openSync(file, 'w'), batchChars: 140 });
    const line = (n: number) => `${JSON.stringify({ n, pad: 'x'.repeat(20) })}\n`;
    for (let n = 0; n < 3; n++) out.write(line(n));
    expect(readFileSync(file, 'utf8')).toBe('');
    out.write(line(3));
    expect(readFileSync(file, 'utf8')).toBe([0, 1, 2, 3].map(line).join(''));
    out.write(line(4));
    out.flush();
    expect(readFileSync(file, 'utf8')).toBe([0, 1, 2, 3, 4].map(line).join(''));
  });

  it('writes a line given in parts as the same line given whole, and a line longer than a batch whole, in order, at once', () => {
    const file = join(dir, 'log');
    const out = open({ fd: openSync(file, 'w'), batchChars: 100 });
    out.write('{"n":0}\n');
    out.writeParts(['{"n":', '1,"s":"', 'é\u2028', '"}\n']);
    const long = `${JSON.stringify({ n: 2, pad: 'x'.repeat(20_000) })}\n`;
    out.writeParts([long.slice(0, 10), long.slice(10)]);
    expect(readFileSync(file, 'utf8')).toBe(`{"n":0}\n{"n":1,"s":"é\u2028"}\n${long}`);
    out.write(long);
    out.write('{"n":3}\n');
    out.flush();
    expect(readFileSync(file, 'utf8')).toBe(`{"n":0}\n{"n":1,"s":"é\u2028"}\n${long}${long}{"n":3}\n`);
  });

  it('writes a lone line within its flush interval', async () => {
    const file = join(dir, 'log');
    const out = open({ fd: openSync(file, 'w'), flushEveryMs: 50 });
    out.write('{"lone":true}\n');
    expect(readFileSync(file, 'utf8')).toBe('');
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(readFileSync(file, 'utf8')).toBe('{"lone":true}\n');
  });

  it('keeps what a reader that stopped reading did not take, drops past the cap, and says how many once the reader is back', () => {
    const fifo = join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    const reader = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
    const writer = openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK);
    try {
      const out = open({ fd: writer, batchChars: 4096, maxPendingBytes: 256 * 1024 });
      const line = (n: number) => `${JSON.stringify({ n, pad: 'x'.repeat(80) })}\n`;
      // Far more than the pipe (64 KiB on Linux) and the cap hold together: the writer never blocks.
      const sent = 8000;
      let accepted = 0;
      for (let n = 0; n < sent; n++) if (out.write(line(n))) accepted++;
      expect(accepted).toBeGreaterThan(0);
      expect(accepted).toBeLessThan(sent);

      // The reader is back: read what is there, let the output write more, until nothing is left.
      let text = '';
      const chunk = Buffer.alloc(1 << 16);
      const readAvailable = (): number => {
        let total = 0;
        for (;;) {
          let n = 0;
          try {
            n = readSync(reader, chunk);
          } catch (error) {
            if ((error as NodeJS.ErrnoException).code !== 'EAGAIN') throw error;
          }
          if (n <= 0) return total;
          text += chunk.toString('utf8', 0, n);
          total += n;
        }
      };
      for (let round = 0; round < 1000; round++) {
        const read = readAvailable();
        out.flush();
        if (read === 0 && round > 0 && readAvailable() === 0) break;
      }
      const parsed = text.trimEnd().split('\n').map((l) => JSON.parse(l) as { n?: number; dropped?: number; msg?: string });
      const note = parsed.find((p) => p.dropped !== undefined)!;
      expect(note.msg).toBe('log lines dropped: the output was not being read');
      expect(note.dropped).toBe(sent - accepted);
      const numbers = parsed.filter((p) => p.n !== undefined && p.n >= 0).map((p) => p.n);
      expect(numbers).toEqual([...Array(accepted).keys()]);
    } finally {
      closeSync(reader);
    }
  });
});
