import { describe, expect, it } from 'vitest';
import { HelpRequested, parseFlags, usage, UsageError, type FlagSpec } from './flags.ts';

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

  describe('a duration flag', () => {
    const SPECS = { 'drain-timeout': { type: 'duration', default: '20s', description: 'drain' } } satisfies Record<string, FlagSpec>;

    it('reads the default, the environment and the command line as milliseconds', () => {
      expect(parseFlags(SPECS, [], {}).values['drain-timeout']).toBe(20_000);
      expect(parseFlags(SPECS, [], { BREAKWATER_DRAIN_TIMEOUT: '1m30s' }).values['drain-timeout']).toBe(90_000);
      expect(parseFlags(SPECS, ['--drain-timeout', '250ms'], {}).values['drain-timeout']).toBe(250);
    });

    it('rejects what is not a duration, with the default as the example', () => {
      expect(() => parseFlags(SPECS, ['--drain-timeout', '20'], {})).toThrow(UsageError);
      expect(() => parseFlags(SPECS, ['--drain-timeout', '20'], {})).toThrow('--drain-timeout must be a duration like 20s, got "20"');
    });
  });

  describe('a port flag', () => {
    const SPECS = { 'admin-port': { type: 'port', default: 15090, description: 'admin' } } satisfies Record<string, FlagSpec>;

    it('takes 0 (any free port) to 65535', () => {
      expect(parseFlags(SPECS, ['--admin-port', '0'], {}).values['admin-port']).toBe(0);
      expect(parseFlags(SPECS, ['--admin-port=65535'], {}).values['admin-port']).toBe(65535);
    });

    it('refuses anything else, naming the range', () => {
      for (const bad of ['65536', '-1', '8.5', 'http', '']) {
        expect(() => parseFlags(SPECS, [`--admin-port=${bad}`], {})).toThrow(`--admin-port must be a port number from 0 (any free port) to 65535, got ${JSON.stringify(bad)}`);
      }
    });
  });

  describe('a string flag with choices', () => {
    const SPECS = { mode: { type: 'string', default: 'auto', choices: ['auto', 'native'], description: 'mode' } } satisfies Record<string, FlagSpec>;

    it('accepts a listed value', () => {
      expect(parseFlags(SPECS, ['--mode', 'native'], {}).values.mode).toBe('native');
    });

    it('rejects any other, naming the flag and what it allows', () => {
      expect(() => parseFlags(SPECS, [], { BREAKWATER_MODE: 'sometimes' })).toThrow(UsageError);
      expect(() => parseFlags(SPECS, [], { BREAKWATER_MODE: 'sometimes' })).toThrow('--mode must be one of auto, native, got "sometimes"');
    });

    it('lists them in the help', () => {
      expect(usage('sidecar', SPECS)).toContain('(one of auto, native; default "auto"; env BREAKWATER_MODE)');
    });
  });

  it('asks for help on --help', () => {
    expect(() => parseFlags(FLAGS, ['--port', '1', '--help'], {})).toThrow(HelpRequested);
  });
});
