import { LoomError } from '../errors.js';
import {
  type ImplicitMetaPolicy,
  type ImplicitMetaRule,
  type OutOfRule,
  PRINCIPAL_ROLES,
  type Policy,
  type Principal,
  type PrincipalRole,
  type SignaturePolicy,
} from './ast.js';

export const PolicyErrorCode = {
  SYNTAX: 'POLICY_SYNTAX',
} as const;

export interface PolicySyntaxDetails extends Record<string, unknown> {
  /** The policy text as given. */
  text: string;
  /** 0-based offset in `text` where the problem is. */
  position: number;
}

function syntaxError(text: string, position: number, problem: string): LoomError<PolicySyntaxDetails> {
  return new LoomError(
    PolicyErrorCode.SYNTAX,
    `policy syntax error at position ${position + 1}: ${problem} in ${JSON.stringify(text)}`,
    { details: { text, position }, httpStatus: 400 },
  );
}

type Token =
  | { kind: 'word'; value: string; pos: number }
  | { kind: 'number'; value: number; raw: string; pos: number }
  | { kind: 'string'; value: string; pos: number }
  | { kind: 'punct'; value: '(' | ')' | ','; pos: number }
  | { kind: 'end'; pos: number };

function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (/\s/.test(c)) {
      i++;
    } else if (c === '(' || c === ')' || c === ',') {
      tokens.push({ kind: 'punct', value: c, pos: i });
      i++;
    } else if (c === "'" || c === '"') {
      const close = text.indexOf(c, i + 1);
      if (close < 0) throw syntaxError(text, i, `unterminated string starting with ${c}`);
      tokens.push({ kind: 'string', value: text.slice(i + 1, close), pos: i });
      i = close + 1;
    } else if (/[0-9]/.test(c)) {
      const m = /^[0-9]+/.exec(text.slice(i))!;
      tokens.push({ kind: 'number', value: Number(m[0]), raw: m[0], pos: i });
      i += m[0].length;
    } else if (/[A-Za-z_]/.test(c)) {
      const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(text.slice(i))!;
      tokens.push({ kind: 'word', value: m[0], pos: i });
      i += m[0].length;
    } else {
      throw syntaxError(text, i, `unexpected character ${JSON.stringify(c)}`);
    }
  }
  tokens.push({ kind: 'end', pos: text.length });
  return tokens;
}

function describe(t: Token): string {
  switch (t.kind) {
    case 'end':
      return 'end of input';
    case 'punct':
      return `'${t.value}'`;
    case 'string':
      return `string '${t.value}'`;
    case 'number':
      return `number ${t.raw}`;
    case 'word':
      return `'${t.value}'`;
  }
}

// Fabric's MSP ids are alphanumerics, dots and dashes; the role is after the last dot.
const MSP_ID = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

function parsePrincipal(text: string, value: string, pos: number): Principal {
  const dot = value.lastIndexOf('.');
  if (dot <= 0) {
    throw syntaxError(text, pos, `principal '${value}' is not of the form 'MSPID.role'`);
  }
  const mspId = value.slice(0, dot);
  const role = value.slice(dot + 1);
  if (!MSP_ID.test(mspId)) throw syntaxError(text, pos, `invalid MSP id '${mspId}' in principal '${value}'`);
  if (!(PRINCIPAL_ROLES as readonly string[]).includes(role)) {
    throw syntaxError(
      text,
      pos + 1 + dot + 1,
      `unknown role '${role}' in principal '${value}' (expected one of ${PRINCIPAL_ROLES.join(', ')})`,
    );
  }
  return { mspId, role: role as PrincipalRole };
}

class SignaturePolicyParser {
  readonly #text: string;
  readonly #tokens: Token[];
  #i = 0;

  constructor(text: string) {
    this.#text = text;
    this.#tokens = tokenize(text);
  }

  parse(): SignaturePolicy {
    const rule = this.#rule();
    const t = this.#peek();
    if (t.kind !== 'end') throw syntaxError(this.#text, t.pos, `unexpected ${describe(t)} after the policy`);
    return rule;
  }

  #peek(): Token {
    return this.#tokens[this.#i]!;
  }

  #next(): Token {
    const t = this.#tokens[this.#i]!;
    if (t.kind !== 'end') this.#i++;
    return t;
  }

  #expect(value: '(' | ')' | ',', context: string): Token {
    const t = this.#next();
    if (t.kind !== 'punct' || t.value !== value) {
      throw syntaxError(this.#text, t.pos, `expected '${value}' ${context} but found ${describe(t)}`);
    }
    return t;
  }

  #rule(): SignaturePolicy {
    const t = this.#next();
    if (t.kind === 'string') return { type: 'signedBy', principal: parsePrincipal(this.#text, t.value, t.pos) };
    if (t.kind !== 'word') {
      throw syntaxError(this.#text, t.pos, `expected AND, OR, OutOf or a quoted principal but found ${describe(t)}`);
    }
    const keyword = t.value.toUpperCase();
    if (keyword !== 'AND' && keyword !== 'OR' && keyword !== 'OUTOF') {
      throw syntaxError(this.#text, t.pos, `unknown operator '${t.value}' (expected AND, OR or OutOf)`);
    }
    this.#expect('(', `after ${t.value}`);
    let n: number | undefined;
    let nToken: Token | undefined;
    if (keyword === 'OUTOF') {
      nToken = this.#next();
      if (nToken.kind !== 'number') {
        throw syntaxError(
          this.#text,
          nToken.pos,
          `expected a count as OutOf's first argument but found ${describe(nToken)}`,
        );
      }
      n = nToken.value;
      this.#expect(',', 'after the OutOf count');
    }
    const rules: SignaturePolicy[] = [this.#rule()];
    for (;;) {
      const sep = this.#next();
      if (sep.kind === 'punct' && sep.value === ')') break;
      if (sep.kind !== 'punct' || sep.value !== ',') {
        throw syntaxError(this.#text, sep.pos, `expected ',' or ')' but found ${describe(sep)}`);
      }
      rules.push(this.#rule());
    }
    let node: OutOfRule;
    if (keyword === 'AND') node = { type: 'outOf', op: 'AND', n: rules.length, rules };
    else if (keyword === 'OR') node = { type: 'outOf', op: 'OR', n: 1, rules };
    else {
      // An OutOf that can never be met, or is met by nobody signing, is a mistake in the policy.
      if (n === undefined || n < 1 || n > rules.length) {
        throw syntaxError(
          this.#text,
          nToken!.pos,
          `OutOf count ${n} must be between 1 and the number of rules (${rules.length})`,
        );
      }
      node = { type: 'outOf', op: 'OutOf', n, rules };
    }
    return node;
  }
}

/** Parses Fabric's signature policy syntax: `AND(...)`, `OR(...)`, `OutOf(n, ...)`, `'MSP.role'`. */
export function parseSignaturePolicy(text: string): SignaturePolicy {
  if (text.trim() === '') throw syntaxError(text, 0, 'empty policy');
  return new SignaturePolicyParser(text).parse();
}

const IMPLICIT_META = /^\s*(ANY|ALL|MAJORITY)\s+([A-Za-z][A-Za-z0-9_-]*)\s*$/i;
const IMPLICIT_META_START = /^\s*(ANY|ALL|MAJORITY)(\s|$)/i;

/** Parses `ANY|ALL|MAJORITY <SubPolicyName>`. */
export function parseImplicitMetaPolicy(text: string): ImplicitMetaPolicy {
  const m = IMPLICIT_META.exec(text);
  if (!m) {
    const start = IMPLICIT_META_START.exec(text);
    if (!start) {
      const pos = text.length - text.trimStart().length;
      throw syntaxError(text, pos, 'expected ANY, ALL or MAJORITY followed by a policy name');
    }
    const rest = text.slice(start[0].length);
    const namePos = start[0].length + (rest.length - rest.trimStart().length);
    const name = /^[A-Za-z][A-Za-z0-9_-]*/.exec(text.slice(namePos));
    if (!name) throw syntaxError(text, namePos, 'expected a policy name after the rule');
    const after = text.slice(namePos + name[0].length);
    throw syntaxError(
      text,
      namePos + name[0].length + (after.length - after.trimStart().length),
      'expected a single policy name after the rule',
    );
  }
  return { type: 'implicitMeta', rule: m[1]!.toUpperCase() as ImplicitMetaRule, subPolicy: m[2]! };
}

/** True when the text is written as an implicit meta policy (starts with ANY, ALL or MAJORITY). */
export function isImplicitMetaText(text: string): boolean {
  return IMPLICIT_META_START.test(text);
}

/** Parses either kind of policy; implicit meta policies are recognized by their leading rule word. */
export function parsePolicy(text: string): Policy {
  return isImplicitMetaText(text) ? parseImplicitMetaPolicy(text) : parseSignaturePolicy(text);
}
