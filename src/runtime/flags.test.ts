import { describe, expect, it } from 'vitest';
import { HelpRequested, parseFlags, UsageError, type FlagSpec } from './flags.ts';

const FLAGS = {
  port: { type: 'integer', default: 15080, description: 'proxy port' },
  'leader-elect': { type: 'boolean', default: true, description: 'elect' },
  'log-level': { type: 'string', default: 'info', description: 'level' },
} satisfies Record<string, FlagSpec>;

describe('parseFlags', () => {
  it('uses defaults, then BREAKWATER_<FLAG>, then the command line', () => {
    expect(parseFlags(FLAGS, [], {}).values).toEqual({ port: 15080, 'leader-elect': true, 'log-level': 'info' });
    expect(parseFlags(FLAGS, [], { BREAKWATER_PORT: '9000', BREAKWATER_LOG_LEVEL: 'debug' }).values.port).toBe(9000);
    expect(parseFlags(FLAGS, ['--port', '8000'], { BREAKWATER_PORT: '9000' }).values.port).toBe(8000);
  });

  it.each([
    [['--leader-elect'], true],
    [['--leader-elect', 'true'], true],
    [['--leader-elect', 'false'], false],
    [['--leader-elect=false'], false],
  ])('reads the boolean %j as %s', (argv, expected) => {
    expect(parseFlags(FLAGS, argv, {}).values['leader-elect']).toBe(expected);
  });

  it('keeps a positional after a bare boolean flag', () => {
    expect(parseFlags(FLAGS, ['--leader-elect', 'file.yaml'], {}).positionals).toEqual(['file.yaml']);
  });

  it.each([
    [['--nope'], /Unknown option '--nope'/],
    [['--port', 'x'], /--port must be a whole number/],
    [['--leader-elect=maybe'], /--leader-elect must be true or false/],
  ])('rejects %j as a usage error', (argv, message) => {
    expect(() => parseFlags(FLAGS, argv, {})).toThrow(UsageError);
    expect(() => parseFlags(FLAGS, argv, {})).toThrow(message);
  });

  it('asks for help on --help', () => {
    expect(() => parseFlags(FLAGS, ['--port', '1', '--help'], {})).toThrow(HelpRequested);
  });
});
