/**
 * Parameter names of a function, read from its source text (as fabric-contract-api does): the
 * metadata names each transaction parameter, and compiled JavaScript keeps no other record of them.
 */
export function parameterNames(fn: Function): string[] | undefined {
  const src = Function.prototype.toString.call(fn);
  const open = src.indexOf('(');
  if (open < 0) return undefined;
  // Find the matching close paren, skipping strings, comments and nested brackets in defaults.
  let depth = 0;
  let i = open;
  let quote: string | null = null;
  for (; i < src.length; i++) {
    const c = src[i]!;
    if (quote !== null) {
      if (c === '\\') i++;
      else if (c === quote) quote = null;
      continue;
    }
    if (c === '"' || c === "'" || c === '`') quote = c;
    else if (c === '/' && src[i + 1] === '*') i = src.indexOf('*/', i + 2) + 1 || src.length;
    else if (c === '/' && src[i + 1] === '/') i = src.indexOf('\n', i) < 0 ? src.length : src.indexOf('\n', i);
    else if (c === '(' || c === '[' || c === '{') depth++;
    else if (c === ')' || c === ']' || c === '}') {
      depth--;
      if (depth === 0) break;
    }
  }
  const inner = src
    .slice(open + 1, i)
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/\/\/.*$/gm, '');
  const parts: string[] = [];
  let cur = '';
  depth = 0;
  quote = null;
  for (let j = 0; j < inner.length; j++) {
    const c = inner[j]!;
    if (quote !== null) {
      if (c === '\\') j++;
      else if (c === quote) quote = null;
      continue;
    }
    if (c === '"' || c === "'" || c === '`') quote = c;
    else if (c === '(' || c === '[' || c === '{') depth++;
    else if (c === ')' || c === ']' || c === '}') depth--;
    if (c === ',' && depth === 0) {
      parts.push(cur);
      cur = '';
    } else if (quote === null || c === quote) cur += c;
  }
  if (cur.trim() !== '') parts.push(cur);
  return parts.map((p, idx) => {
    const m = /^\s*(?:\.\.\.)?\s*([A-Za-z_$][\w$]*)/.exec(p);
    return m?.[1] ?? `param${idx}`;
  });
}
