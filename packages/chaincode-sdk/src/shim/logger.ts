/**
 * A small leveled logger with the call shape chaincode written for fabric-shim's winston logger uses:
 * `logger.info(message, ...args)`, `logger.level = 'debug'`. Lines go to stdout/stderr, where the
 * peer (or the container runtime) collects them.
 */
import { format } from 'node:util';

export type LogLevel = 'error' | 'warn' | 'info' | 'debug';
const ranks: Record<LogLevel, number> = { error: 0, warn: 1, info: 2, debug: 3 };

export function normalizeLogLevel(level: string | undefined, fallback: LogLevel = 'info'): LogLevel {
  const l = (level ?? '').toLowerCase();
  if (l === 'critical' || l === 'fatal') return 'error';
  if (l === 'warning') return 'warn';
  if (l === 'notice') return 'info';
  return l in ranks ? (l as LogLevel) : fallback;
}

/** Every logger made by `newLogger` follows this level unless it sets its own. */
let defaultLevel: LogLevel = normalizeLogLevel(process.env['CORE_CHAINCODE_LOGGING_LEVEL']);

export function setDefaultLogLevel(level: string): void {
  defaultLevel = normalizeLogLevel(level, defaultLevel);
}

export interface ChaincodeLogger {
  readonly name: string;
  level: LogLevel;
  error(message: unknown, ...args: unknown[]): void;
  warn(message: unknown, ...args: unknown[]): void;
  info(message: unknown, ...args: unknown[]): void;
  debug(message: unknown, ...args: unknown[]): void;
}

class ConsoleLogger implements ChaincodeLogger {
  readonly name: string;
  #level: LogLevel | undefined;

  constructor(name: string, level?: LogLevel) {
    this.name = name;
    this.#level = level;
  }

  get level(): LogLevel {
    return this.#level ?? defaultLevel;
  }
  set level(l: LogLevel) {
    this.#level = normalizeLogLevel(l, this.level);
  }

  #log(level: LogLevel, message: unknown, args: unknown[]): void {
    if (ranks[level] > ranks[this.level]) return;
    const line = `${new Date().toISOString()} ${level.toUpperCase()} [${this.name}] ${format(message, ...args)}\n`;
    (level === 'error' || level === 'warn' ? process.stderr : process.stdout).write(line);
  }
  error(message: unknown, ...args: unknown[]): void {
    this.#log('error', message, args);
  }
  warn(message: unknown, ...args: unknown[]): void {
    this.#log('warn', message, args);
  }
  info(message: unknown, ...args: unknown[]): void {
    this.#log('info', message, args);
  }
  debug(message: unknown, ...args: unknown[]): void {
    this.#log('debug', message, args);
  }
}

export function newLogger(name: string, level?: string): ChaincodeLogger {
  return new ConsoleLogger(name, level === undefined ? undefined : normalizeLogLevel(level));
}
