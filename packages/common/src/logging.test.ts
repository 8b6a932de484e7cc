import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import {
  childLogger,
  componentOf,
  createLogger,
  formatLogSpec,
  LogLevels,
  levelFor,
  logLevelsOf,
  parseLogSpec,
} from './logging.js';

function sink(): { stream: Writable; lines: () => Array<Record<string, unknown>> } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      chunks.push(String(chunk));
      cb();
    },
  });
  return {
    stream,
    lines: () =>
      chunks
        .join('')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

describe('parseLogSpec', () => {
  it('parses a default and per-component levels', () => {
    const spec = parseLogSpec('warn:orderer.raft=debug:peer=info');
    expect(spec).toEqual({
      defaultLevel: 'warn',
      components: [
        { component: 'orderer.raft', level: 'debug' },
        { component: 'peer', level: 'info' },
      ],
    });
    expect(formatLogSpec(spec)).toBe('warn:orderer.raft=debug:peer=info');
  });

  it("accepts Fabric's forms: comma lists, upper case, WARNING, no default", () => {
    const spec = parseLogSpec('gossip,privdata=DEBUG:WARNING');
    expect(formatLogSpec(spec)).toBe('warn:gossip=debug:privdata=debug');
    expect(parseLogSpec('peer=error').defaultLevel).toBe('info');
  });

  it('gives the most specific component its level', () => {
    const spec = parseLogSpec('warn:orderer=info:orderer.raft=debug');
    expect(levelFor(spec, 'orderer.raft')).toBe('debug');
    expect(levelFor(spec, 'orderer.raft.storage')).toBe('debug');
    expect(levelFor(spec, 'orderer.blockcutter')).toBe('info');
    expect(levelFor(spec, 'ordererx')).toBe('warn');
    expect(levelFor(spec, 'peer')).toBe('warn');
  });

  it.each(['', 'loud', 'peer=loud', '=debug', 'peer..x=debug'])('rejects %j with LOGSPEC_INVALID', (s) => {
    expect(() => parseLogSpec(s)).toThrow(expect.objectContaining({ code: 'LOGSPEC_INVALID', httpStatus: 400 }));
  });
});

describe('createLogger', () => {
  it('writes JSON lines with component, level name and time', () => {
    const out = sink();
    const log = createLogger({ component: 'peer', destination: out.stream, bindings: { node: 'peer0' } });
    log.info({ block: 3 }, 'committed');
    log.debug('hidden');
    const [line] = out.lines();
    expect(out.lines()).toHaveLength(1);
    expect(line).toMatchObject({ level: 'info', component: 'peer', node: 'peer0', block: 3, msg: 'committed' });
    expect(typeof line!['time']).toBe('string');
  });

  it('changes levels at run time per component, including children', () => {
    const out = sink();
    const log = createLogger({ component: 'orderer', level: 'warn', destination: out.stream });
    const raft = childLogger(log, 'raft');
    const cutter = childLogger(log, 'blockcutter');
    expect(componentOf(raft)).toBe('orderer.raft');
    raft.info('before');
    logLevelsOf(log)!.setSpec('warn:orderer.raft=debug');
    raft.debug('raft detail');
    cutter.info('cutter info');
    log.warn('root warning');
    expect(out.lines().map((l) => [l['component'], l['msg']])).toEqual([
      ['orderer.raft', 'raft detail'],
      ['orderer', 'root warning'],
    ]);
    expect(out.lines()[0]!['component']).toBe('orderer.raft');
  });

  it('shares one registry across loggers and keeps the old spec on a bad one', () => {
    const levels = new LogLevels('info');
    const out = sink();
    const a = createLogger({ component: 'peer', levels, destination: out.stream });
    const b = createLogger({ component: 'gossip', levels, destination: out.stream });
    levels.setSpec('error:gossip=debug');
    expect(a.level).toBe('error');
    expect(b.level).toBe('debug');
    expect(() => levels.setSpec('nonsense=')).toThrow(expect.objectContaining({ code: 'LOGSPEC_INVALID' }));
    expect(levels.spec).toBe('error:gossip=debug');
    expect(b.level).toBe('debug');
  });
});
