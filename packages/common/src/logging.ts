import { pino } from 'pino';
import { LoomError } from './errors.js';

/**
 * Structured logging (pino) with per-component levels that change at run time. A component is a
 * dotted name (`orderer`, `orderer.raft`); a log spec in Fabric's syntax sets a default level and
 * levels for components and everything below them:
 *
 *   info                                   everything at info
 *   warn:orderer.raft=debug:peer=info      default warn; orderer.raft.* at debug; peer.* at info
 *   warn:gossip,privdata=debug             several components share a level
 *
 * The most specific (longest) matching component wins.
 */

export type Logger = pino.Logger;

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

// Fabric's level names, accepted so that specs written for Fabric work unchanged.
const LEVEL_ALIASES: Record<string, LogLevel> = { warning: 'warn', panic: 'fatal', critical: 'fatal' };

export interface LogSpec {
  readonly defaultLevel: LogLevel;
  /** Component prefix → level, in the order written. */
  readonly components: ReadonlyArray<{ readonly component: string; readonly level: LogLevel }>;
}

export const LogSpecErrorCode = { INVALID: 'LOGSPEC_INVALID' } as const;

function badSpec(spec: string, problem: string): LoomError {
  return new LoomError(LogSpecErrorCode.INVALID, `invalid log spec ${JSON.stringify(spec)}: ${problem}`, {
    details: { spec },
    httpStatus: 400,
  });
}

function parseLevel(spec: string, word: string): LogLevel {
  const w = word.trim().toLowerCase();
  const level = (LOG_LEVELS as readonly string[]).includes(w) ? (w as LogLevel) : LEVEL_ALIASES[w];
  if (!level) throw badSpec(spec, `unknown level '${word.trim()}' (expected one of ${LOG_LEVELS.join(', ')})`);
  return level;
}

const COMPONENT = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;

/** Parses a Fabric-style log spec; throws `LOGSPEC_INVALID` (400). */
export function parseLogSpec(spec: string): LogSpec {
  if (spec.trim() === '') throw badSpec(spec, 'empty spec');
  let defaultLevel: LogLevel | undefined;
  const components: Array<{ component: string; level: LogLevel }> = [];
  for (const term of spec.split(':')) {
    const eq = term.indexOf('=');
    if (eq < 0) {
      // A bare level sets the default; as in Fabric, a later one wins.
      defaultLevel = parseLevel(spec, term);
      continue;
    }
    const level = parseLevel(spec, term.slice(eq + 1));
    for (const name of term.slice(0, eq).split(',')) {
      const component = name.trim();
      if (!COMPONENT.test(component)) throw badSpec(spec, `invalid component name '${component}'`);
      const existing = components.findIndex((c) => c.component === component);
      if (existing >= 0) components.splice(existing, 1);
      components.push({ component, level });
    }
  }
  return { defaultLevel: defaultLevel ?? 'info', components };
}

/** The canonical text of a spec: default level first, then components in order. */
export function formatLogSpec(spec: LogSpec): string {
  return [spec.defaultLevel, ...spec.components.map((c) => `${c.component}=${c.level}`)].join(':');
}

/** The level a spec gives a component: its most specific matching entry, else the default. */
export function levelFor(spec: LogSpec, component: string): LogLevel {
  let best: { component: string; level: LogLevel } | undefined;
  for (const c of spec.components) {
    const matches = component === c.component || component.startsWith(`${c.component}.`);
    if (matches && (!best || c.component.length > best.component.length)) best = c;
  }
  return best?.level ?? spec.defaultLevel;
}

/**
 * The current log spec of a process, and the loggers it governs. Changing the spec re-levels every
 * live logger at once. Loggers are held weakly, so short-lived children do not accumulate.
 */
export class LogLevels {
  #spec: LogSpec;
  readonly #loggers = new Map<string, Set<WeakRef<Logger>>>();

  constructor(spec = 'info') {
    this.#spec = parseLogSpec(spec);
  }

  /** The current spec, in canonical form. */
  get spec(): string {
    return formatLogSpec(this.#spec);
  }

  /** Replaces the spec and re-levels every logger; throws `LOGSPEC_INVALID` and changes nothing on a bad spec. */
  setSpec(spec: string): void {
    this.#spec = parseLogSpec(spec);
    for (const [component, refs] of this.#loggers) {
      const level = levelFor(this.#spec, component);
      for (const ref of refs) {
        const logger = ref.deref();
        if (logger) logger.level = level;
        else refs.delete(ref);
      }
      if (refs.size === 0) this.#loggers.delete(component);
    }
  }

  levelFor(component: string): LogLevel {
    return levelFor(this.#spec, component);
  }

  /** Puts a logger under this registry: sets its level now and on every later spec change. */
  track(component: string, logger: Logger): void {
    logger.level = this.levelFor(component);
    let refs = this.#loggers.get(component);
    if (!refs) this.#loggers.set(component, (refs = new Set()));
    refs.add(new WeakRef(logger));
  }
}

export interface CreateLoggerOptions {
  /** Dotted component name, e.g. `peer` or `orderer.raft`. */
  readonly component: string;
  /** Initial log spec (`info`, `warn:orderer.raft=debug`) for a new registry; ignored when `levels` is given. */
  readonly level?: string;
  /** Shared registry, so that one `/logspec` call re-levels every logger of the process. */
  readonly levels?: LogLevels;
  /** Where lines go: a stream, a file descriptor, or a file path. Default: stdout. */
  readonly destination?: pino.DestinationStream | number | string;
  /** Fields added to every line (e.g. `{ node: 'peer0.org1.example.com' }`). */
  readonly bindings?: Record<string, unknown>;
}

interface LoggerMeta {
  readonly root: Logger;
  readonly component: string;
  readonly levels: LogLevels;
  readonly bindings: Record<string, unknown>;
}

const meta = new WeakMap<Logger, LoggerMeta>();

function toDestination(d: CreateLoggerOptions['destination']): pino.DestinationStream {
  if (d === undefined) return pino.destination(1);
  if (typeof d === 'number') return pino.destination(d);
  if (typeof d === 'string') return pino.destination({ dest: d, mkdir: true });
  return d;
}

function componentLogger(root: Logger, component: string, levels: LogLevels, bindings: Record<string, unknown>) {
  // Children hang off the root, not off each other: pino would repeat a rebound `component` key.
  const logger = root.child({ ...bindings, component });
  levels.track(component, logger);
  meta.set(logger, { root, component, levels, bindings });
  return logger;
}

/** A logger for a component, JSON lines with ISO timestamps and level names. */
export function createLogger(options: CreateLoggerOptions): Logger {
  const levels = options.levels ?? new LogLevels(options.level ?? 'info');
  const root = pino(
    {
      // The root never logs itself; children carry their own levels.
      level: 'trace',
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    toDestination(options.destination),
  );
  return componentLogger(root, options.component, levels, { ...options.bindings });
}

/**
 * A logger for a sub-component (`raft` under `orderer` is `orderer.raft`), sharing the parent's
 * output, bindings and level registry.
 */
export function childLogger(parent: Logger, subComponent: string, bindings: Record<string, unknown> = {}): Logger {
  const m = meta.get(parent);
  if (!m) {
    // A logger not made here (a test double, say): a plain pino child is the best we can do.
    return parent.child({ ...bindings, component: subComponent });
  }
  return componentLogger(m.root, `${m.component}.${subComponent}`, m.levels, { ...m.bindings, ...bindings });
}

/** The level registry governing a logger made by `createLogger`/`childLogger`. */
export function logLevelsOf(logger: Logger): LogLevels | undefined {
  return meta.get(logger)?.levels;
}

/** The dotted component name of a logger made by `createLogger`/`childLogger`. */
export function componentOf(logger: Logger): string | undefined {
  return meta.get(logger)?.component;
}
