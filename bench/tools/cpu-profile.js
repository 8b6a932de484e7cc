#!/usr/bin/env node
// Samples the CPU of running Loom nodes for a while through their inspector, writes one
// .cpuprofile per node and prints the functions with the most self time.
//
// Start the network with the inspector open on a free port (printed into each node's log):
//   LOOM_NODE_ARGS="--inspect=127.0.0.1:0" loom network up --detach -c <config>
// then, while a load runs (e.g. `loom bench --attach --duration 60`):
//   node --experimental-websocket bench/tools/cpu-profile.js <dataDir> [seconds=20] [outDir] [top=25]
// (Node ≥ 22 has WebSocket without the flag.) The .cpuprofile files open in Chrome DevTools.
import { readFileSync, readdirSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

const [dataDirArg, secondsArg, outArg, topArg] = process.argv.slice(2);
if (!dataDirArg) {
  console.error('usage: node --experimental-websocket bench/tools/cpu-profile.js <dataDir> [seconds] [outDir] [top]');
  process.exit(2);
}
if (typeof WebSocket !== 'function') {
  console.error('no WebSocket: run with node --experimental-websocket (Node 20/21)');
  process.exit(2);
}
const dataDir = resolve(dataDirArg);
const seconds = Math.min(600, Math.max(1, Number(secondsArg ?? 20)));
const outDir = resolve(outArg ?? join(dataDir, 'profiles'));
const top = Number(topArg ?? 25);

/** Last inspector URL each node's log announces. */
function inspectorUrls() {
  const logs = join(dataDir, 'logs');
  const out = [];
  for (const f of readdirSync(logs).filter((f) => f.endsWith('.log'))) {
    const m = [...readFileSync(join(logs, f), 'utf8').matchAll(/Debugger listening on (ws:\/\/\S+)/g)].at(-1);
    if (m) out.push({ name: f.slice(0, -4), url: m[1] });
  }
  return out;
}

function session(url) {
  const ws = new WebSocket(url);
  let id = 0;
  const pending = new Map();
  ws.addEventListener('message', (ev) => {
    const msg = JSON.parse(ev.data);
    if (msg.id && pending.has(msg.id)) {
      const { resolve: ok, reject } = pending.get(msg.id);
      pending.delete(msg.id);
      if (msg.error) reject(new Error(msg.error.message));
      else ok(msg.result);
    }
  });
  const opened = new Promise((ok, reject) => {
    ws.addEventListener('open', ok, { once: true });
    ws.addEventListener('error', () => reject(new Error(`cannot connect to ${url}`)), { once: true });
  });
  return {
    opened,
    send(method, params = {}) {
      const n = ++id;
      ws.send(JSON.stringify({ id: n, method, params }));
      return new Promise((ok, reject) => {
        pending.set(n, { resolve: ok, reject });
        setTimeout(() => reject(new Error(`${method}: no answer`)), 120_000).unref();
      });
    },
    close: () => ws.close(),
  };
}

/** Self time per function (and per package) from a V8 CPU profile. */
export function summarize(profile, topN) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const counts = new Map();
  for (const s of profile.samples) counts.set(s, (counts.get(s) ?? 0) + 1);
  const total = profile.samples.length || 1;
  const fns = new Map();
  const pkgs = new Map();
  let idle = 0;
  for (const [id, c] of counts) {
    const n = byId.get(id);
    const f = n.callFrame;
    const name = f.functionName || '(anonymous)';
    if (name === '(idle)') idle += c;
    const where = f.url
      ? `${f.url.replace(/^file:\/\//, '').replace(/^.*\/(packages|node_modules)\//, '$1/')}:${f.lineNumber + 1}`
      : '';
    const key = `${name} ${where}`;
    fns.set(key, (fns.get(key) ?? 0) + c);
    const pkg = !f.url
      ? name.startsWith('(')
        ? name
        : '(native/builtin)'
      : f.url.startsWith('node:')
        ? 'node:internal'
        : (/\/(packages\/[^/]+\/[^/]+\/[^/]+)/.exec(f.url)?.[1] ??
          /node_modules\/((@[^/]+\/)?[^/]+)/.exec(f.url)?.[1] ??
          f.url);
    pkgs.set(pkg, (pkgs.get(pkg) ?? 0) + c);
  }
  const pct = (c) => (100 * c) / total;
  const busy = total - idle;
  return {
    samples: total,
    idlePct: pct(idle),
    top: [...fns]
      .sort((a, b) => b[1] - a[1])
      .slice(0, topN)
      .map(([k, c]) => ({ fn: k, selfPct: pct(c), ofBusyPct: (100 * c) / (busy || 1) })),
    byArea: [...pkgs]
      .sort((a, b) => b[1] - a[1])
      .slice(0, topN)
      .map(([k, c]) => ({ area: k, selfPct: pct(c), ofBusyPct: (100 * c) / (busy || 1) })),
  };
}

const targets = inspectorUrls();
if (targets.length === 0) {
  console.error(
    `no 'Debugger listening on' line in ${join(dataDir, 'logs')}/*.log: start the network with LOOM_NODE_ARGS="--inspect=127.0.0.1:0"`,
  );
  process.exit(2);
}
mkdirSync(outDir, { recursive: true });
const results = await Promise.all(
  targets.map(async (t) => {
    const s = session(t.url);
    try {
      await s.opened;
      await s.send('Profiler.enable');
      await s.send('Profiler.setSamplingInterval', { interval: 1000 });
      await s.send('Profiler.start');
      await new Promise((r) => setTimeout(r, seconds * 1000));
      const { profile } = await s.send('Profiler.stop');
      const file = join(outDir, `${t.name}.cpuprofile`);
      writeFileSync(file, JSON.stringify(profile));
      return { ...t, file, summary: summarize(profile, top) };
    } catch (e) {
      return { ...t, error: e.message };
    } finally {
      s.close();
    }
  }),
);
for (const r of results) {
  console.log(
    `\n=== ${r.name} ${r.error ? `: ${r.error}` : `(${r.summary.samples} samples over ${seconds} s, idle ${r.summary.idlePct.toFixed(1)}%) → ${r.file}`}`,
  );
  if (r.error) continue;
  console.log('  self time by area (% of all samples / % of non-idle):');
  for (const a of r.summary.byArea.filter((x) => x.area !== '(idle)').slice(0, 12))
    console.log(`    ${a.selfPct.toFixed(1).padStart(5)}% ${a.ofBusyPct.toFixed(1).padStart(5)}%  ${a.area}`);
  console.log('  top functions by self time:');
  for (const f of r.summary.top.filter((x) => !x.fn.startsWith('(idle)')))
    console.log(`    ${f.selfPct.toFixed(1).padStart(5)}% ${f.ofBusyPct.toFixed(1).padStart(5)}%  ${f.fn}`);
}
process.exit(0);
