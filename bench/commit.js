// Peer validate+commit throughput: blocks of 500 endorser transactions, each with 2 endorsements
// (Org1 and Org2 peers) and a client signature, committed through ChannelLedger on a real level
// directory with the signature worker pool — first on an empty state, then on a pre-populated one
// (1 M keys by default) — and the difference between the two rates. Each state is measured twice:
// blocks handed over one at a time (each commit awaited, as the peer's deliver client does), then
// with 2 in flight (the ledger's pipeline verifies the next block's signatures meanwhile).
//
//   npm run bench -- commit [prepopulateKeys=1000000] [blocks=120] [prepopulateBudgetSeconds=240]
//
// Pre-population writes keys straight into the state DB (its applyUpdates, batches of 50,000 keys)
// and stops at the key count or the time budget, whichever comes first, and prints how many keys it
// reached and how long it took. Six unmeasured warm-up blocks of their own run first on a scratch ledger.
// 120 blocks per run by default: ≈ 16 MB of level writes, so each run includes about one flush of
// the ledger's 16 MB memtable and the compaction it sets off (a shorter window measures commits
// whose compaction happens after it ends).
// LOOM_BENCH_PROFILE=<dir>: a CPU profile of the main thread per run; LOOM_BENCH_THREADS=1: CPU
// per thread (Linux /proc). Both runs print CPU per block; tx per CPU-second depends much less on
// the machine's load than wall-clock tx/s.
// LOOM_BENCH_WORKERS=<n>: signature worker threads (default: available parallelism).
// LOOM_BENCH_AS_ENDORSER=1: the committing peer is Org1's peer, which endorsed every transaction:
// its own endorsement of each transaction of a block is remembered (verifier.rememberOwn, as its
// endorser does when it signs) just before the block is handed over, inside the measured time.
// Reads the built dist of @loom/peer and @loom/common (LOOM_BENCH_PEER_DIST / LOOM_BENCH_COMMON_DIST
// point elsewhere, e.g. a temporary build).
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const peerDist = process.env.LOOM_BENCH_PEER_DIST ?? join(here, '../packages/peer/dist');
const commonDist = process.env.LOOM_BENCH_COMMON_DIST ?? join(here, '../packages/common/dist');
const load = (base, p) => import(pathToFileURL(join(base, p)).href);

const TXS_PER_BLOCK = 500;

/** CPU seconds (user + system) of this process's main thread, from /proc (Linux); undefined elsewhere. */
function mainThreadCpuSeconds() {
  try {
    const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100; // clock ticks (USER_HZ = 100)
  } catch {
    return undefined;
  }
}

/**
 * LOOM_BENCH_PROFILE=<dir>: a V8 CPU profile of the main thread over each measured run, written as
 * <dir>/commit-<label>.cpuprofile, with the functions of most self time printed.
 */
async function startProfile() {
  if (process.env.LOOM_BENCH_ALLOC) return startAllocationProfile();
  const dir = process.env.LOOM_BENCH_PROFILE;
  if (!dir) return undefined;
  const { Session } = await import('node:inspector/promises');
  const { mkdir, writeFile } = await import('node:fs/promises');
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 200 });
  await session.post('Profiler.start');
  return {
    async stop(label) {
      const { profile } = await session.post('Profiler.stop');
      session.disconnect();
      await mkdir(dir, { recursive: true });
      const file = join(dir, `commit-${label.replace(/[^a-z0-9]+/gi, '-')}.cpuprofile`);
      await writeFile(file, JSON.stringify(profile));
      const byId = new Map(profile.nodes.map((n) => [n.id, n]));
      const self = new Map();
      for (const s of profile.samples) {
        const f = byId.get(s).callFrame;
        const where = f.url ? `${f.url.replace(/^.*\/(packages|node_modules)\//, '$1/')}:${f.lineNumber + 1}` : '';
        const k = `${f.functionName || '(anonymous)'} ${where}`;
        self.set(k, (self.get(k) ?? 0) + 1);
      }
      const total = profile.samples.length || 1;
      console.log(`  profile → ${file}; top self time (main thread):`);
      for (const [k, n] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 30)) {
        console.log(`    ${((100 * n) / total).toFixed(1).padStart(5)}%  ${k}`);
      }
    },
  };
}
/**
 * LOOM_BENCH_ALLOC=1: V8's sampling heap profiler over each measured run (main thread); prints the
 * functions that allocated the most bytes (allocation, not retention: what drives GC).
 */
async function startAllocationProfile() {
  const { Session } = await import('node:inspector/promises');
  const session = new Session();
  session.connect();
  await session.post('HeapProfiler.enable');
  await session.post('HeapProfiler.startSampling', {
    samplingInterval: 16384,
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: true,
  });
  return {
    async stop(label) {
      const { profile } = await session.post('HeapProfiler.stopSampling');
      session.disconnect();
      const self = new Map();
      let total = 0;
      const walk = (n) => {
        const bytes = n.selfSize;
        if (bytes > 0) {
          const f = n.callFrame;
          const where = f.url ? `${f.url.replace(/^.*\/(packages|node_modules)\//, '$1/')}:${f.lineNumber + 1}` : '';
          const k = `${f.functionName || '(anonymous)'} ${where}`;
          self.set(k, (self.get(k) ?? 0) + bytes);
          total += bytes;
        }
        for (const c of n.children) walk(c);
      };
      walk(profile.head);
      console.log(
        `  ${label}: sampled allocation ${(total / 1e6).toFixed(0)} MB; top allocating functions (main thread):`,
      );
      for (const [k, n] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 30)) {
        console.log(`    ${((100 * n) / total).toFixed(1).padStart(5)}%  ${(n / 1e6).toFixed(1).padStart(7)} MB  ${k}`);
      }
    },
  };
}
/** Blocks per run at most: 4 runs of blocks are built in memory first (≈ 1.5 MB each). */
const MAX_BLOCKS = 400;
const WARMUP_BLOCKS = 6;

export async function run(args = []) {
  const prepopulate = Number(args[0] ?? 1_000_000);
  const blocks = Math.min(MAX_BLOCKS, Number(args[1] ?? 120));
  const budgetSeconds = Number(args[2] ?? 240);
  if (!(prepopulate >= 0 && blocks > 0 && budgetSeconds > 0 && budgetSeconds <= 600)) {
    throw new Error(`usage: commit [prepopulateKeys>=0] [blocks 1..${MAX_BLOCKS}] [prepopulateBudgetSeconds 1..600]`);
  }
  const c = await load(commonDist, 'index.js');
  const { createTestOrg } = await load(commonDist, 'testing/index.js');
  const { openChannelLedger, channelLedgerPath } = await load(peerDist, 'committer/ledger.js');
  const { createSignatureVerifier } = await load(peerDist, 'validation/signature-verifier.js');
  const { openLevelKV } = await load(peerDist, 'ledger/level-kv.js');
  const { openLedgerStores } = await load(peerDist, 'ledger/ledger-stores.js');
  const { stateCacheKey } = await load(peerDist, 'ledger/state-db.js');

  const [ordererOrg, org1, org2] = await Promise.all(['OrdererMSP', 'Org1MSP', 'Org2MSP'].map((m) => createTestOrg(m)));
  const channelId = 'benchchannel';
  const org = (o, policies) => ({
    mspId: o.mspId,
    msp: {
      rootCerts: [o.ca.certPem],
      intermediateCerts: [],
      admins: [],
      crls: [],
      tlsRootCerts: [o.ca.certPem],
      tlsIntermediateCerts: [],
      nodeOUs: true,
    },
    anchorPeers: [],
    policies: Object.fromEntries(
      Object.entries(policies).map(([k, rule]) => [k, { rule, version: 0, modPolicy: 'Admins' }]),
    ),
    version: 0,
    modPolicy: 'Admins',
  });
  const def = (rule) => ({ rule, version: 0, modPolicy: 'Admins' });
  const peerPolicies = (m) => ({
    Readers: `OR('${m}.member')`,
    Writers: `OR('${m}.member')`,
    Admins: `OR('${m}.admin')`,
    Endorsement: `OR('${m}.peer')`,
  });
  const config = {
    channelId,
    sequence: 0,
    version: 0,
    modPolicy: 'Admins',
    capabilities: ['V2_0'],
    orgs: { Org1MSP: org(org1, peerPolicies('Org1MSP')), Org2MSP: org(org2, peerPolicies('Org2MSP')) },
    policies: {
      Readers: def('ANY Readers'),
      Writers: def('ANY Writers'),
      Admins: def('MAJORITY Admins'),
      Endorsement: def('MAJORITY Endorsement'),
    },
    orderer: {
      consenters: [
        {
          id: 'o0',
          mspId: 'OrdererMSP',
          host: '127.0.0.1',
          port: 7050,
          raftPort: 7051,
          identityCert: ordererOrg.orderer.certPem,
          tlsCert: ordererOrg.orderer.certPem,
        },
      ],
      batch: {
        batchTimeoutMs: 2000,
        maxMessageCount: 500,
        absoluteMaxBytes: 100_000_000,
        preferredMaxBytes: 50_000_000,
      },
      orgs: {
        OrdererMSP: org(ordererOrg, {
          Readers: "OR('OrdererMSP.member')",
          Writers: "OR('OrdererMSP.member')",
          Admins: "OR('OrdererMSP.admin')",
        }),
      },
      policies: {
        Readers: def('ANY Readers'),
        Writers: def('ANY Writers'),
        Admins: def('MAJORITY Admins'),
        BlockValidation: def('ANY Writers'),
      },
      version: 0,
      modPolicy: 'Admins',
    },
  };
  const genesis = c.buildGenesisBlock(config, Date.now(), c.sha256);

  async function tx(key, readVersion, value) {
    const proposal = c.buildProposal({
      channelId,
      chaincodeName: 'bench',
      args: ['put', key],
      creator: org1.client.serialized,
      nonce: randomBytes(24),
      timestamp: Date.now(),
      hash: c.sha256,
    });
    const results = c.encodeTxReadWriteSet({
      nsRwsets: [
        {
          namespace: 'bench',
          rwset: {
            reads: [{ key, version: readVersion }],
            rangeQueriesInfo: [],
            writes: [{ key, isDelete: false, value }],
            metadataWrites: [],
          },
          collectionHashedRwsets: [],
        },
      ],
    });
    const prp = c.encodeProposalResponsePayload({
      proposalHash: c.computeProposalHash(proposal.headerBytes, proposal.inputBytes, c.sha256),
      extension: c.encodeChaincodeAction({
        results,
        events: new Uint8Array(0),
        response: { status: 200, message: '', payload: new Uint8Array(0) },
        chaincodeName: 'bench',
        chaincodeVersion: '1',
      }),
    });
    const endorsements = endorserBytes.map((endorser, i) => ({
      endorser,
      signature: [org1.peer, org2.peer][i].signer.sign(c.endorsementSignedBytes(prp, endorser)),
    }));
    const payload = c.buildTransactionPayload(proposal, prp, endorsements);
    const envelope = c.encodeEnvelope({ payload, signature: org1.client.signer.sign(payload) });
    // Org1's endorsement, as Org1's peer signed it (LOOM_BENCH_AS_ENDORSER).
    return { envelope, own: { message: prp, signature: endorsements[0].signature } };
  }
  const endorserBytes = [org1.peer, org2.peer].map((p) => c.encodeSerializedIdentity(p.serialized));

  /**
   * Block bytes → Org1's endorsements of its transactions (LOOM_BENCH_AS_ENDORSER): per block, the
   * response payloads and signatures packed in one array, so that holding all blocks' endorsements
   * until their turn adds no million small objects for the main thread's GC to mark (a peer's
   * endorser remembers each one as it signs it and keeps nothing).
   */
  const ownEndorsements = new Map();
  function packOwn(items) {
    const index = new Uint32Array(items.length * 2);
    let size = 0;
    items.forEach((it, i) => {
      index[i * 2] = it.message.length;
      index[i * 2 + 1] = it.signature.length;
      size += it.message.length + it.signature.length;
    });
    const bytes = new Uint8Array(size);
    let at = 0;
    for (const it of items) {
      bytes.set(it.message, at);
      bytes.set(it.signature, at + it.message.length);
      at += it.message.length + it.signature.length;
    }
    return { bytes, index };
  }
  function rememberOwnOf(blockBytes) {
    const own = ownEndorsements.get(blockBytes);
    if (own === undefined) return;
    const { bytes, index } = own;
    for (let i = 0, at = 0; i < index.length; i += 2) {
      const message = bytes.subarray(at, at + index[i]);
      const signature = bytes.subarray(at + index[i], at + index[i] + index[i + 1]);
      at += index[i] + index[i + 1];
      verifier.rememberOwn({ certPem: org1.peer.certPem, message, messageTail: endorserBytes[0], signature });
    }
  }

  async function buildBlocks(count, keyOf, readVersion) {
    const out = [];
    let prev = genesis;
    const value = randomBytes(64);
    for (let b = 1; b <= count; b++) {
      const envs = [];
      const own = [];
      for (let i = 0; i < TXS_PER_BLOCK; i++) {
        const t = await tx(keyOf(b, i), readVersion, value);
        envs.push(t.envelope);
        own.push(t.own);
      }
      const block = c.buildBlock(
        b,
        c.computeBlockHash(prev, c.sha256),
        envs,
        c.encodeConsenterMetadata({ lastConfig: 0, raftIndex: b }),
        c.sha256,
      );
      const signatureHeader = c.encodeSignatureHeader({
        creator: c.encodeSerializedIdentity(ordererOrg.orderer.serialized),
        nonce: randomBytes(24),
      });
      const signature = ordererOrg.orderer.signer.sign(
        c.blockSignedBytes(block.header, signatureHeader, block.metadata.consenterMetadata),
      );
      prev = { ...block, metadata: { ...block.metadata, signatures: [{ signatureHeader, signature }] } };
      const bytes = c.encodeBlock(prev);
      if (asEndorser) ownEndorsements.set(bytes, packOwn(own));
      out.push(bytes);
    }
    return out;
  }

  const asEndorser = process.env.LOOM_BENCH_AS_ENDORSER === '1';
  const workers = Math.max(1, Number(process.env.LOOM_BENCH_WORKERS ?? availableParallelism()));
  const verifier = createSignatureVerifier({ poolSize: workers });
  const dir = await mkdtemp(join(tmpdir(), 'loom-bench-commit-'));
  const fmt = (x) => Math.round(x).toLocaleString('en-US');
  if (asEndorser && typeof verifier.rememberOwn !== 'function') throw new Error('this build has no rememberOwn');
  console.log(
    `commit bench: ${TXS_PER_BLOCK} tx/block, 2 endorsements + 1 creator signature each, ${blocks} blocks per run, ${workers} verify workers` +
      (asEndorser
        ? "; as Org1's endorsing peer (its own endorsements remembered, not verified: 2 signatures verified per tx)"
        : '; as a peer that endorsed none of them (3 signatures verified per tx)'),
  );

  // inFlight 1: each block is handed over when the previous one is committed (the peer's deliver
  // client today); 2: the next block is handed over while one is still committing, so the ledger's
  // pipeline verifies its signatures while the one before is validated and written.
  async function measure(label, dataDir, blockBytes, inFlight = 1) {
    const ledger = await openChannelLedger({ dataDir, channelId, signatureVerifier: verifier });
    if (ledger.height() === 0) await ledger.commitBlock(c.encodeBlock(genesis));
    const profiler = await startProfile();
    const times = [];
    const phases = { checkMs: 0, validateMs: 0, writeMs: 0 };
    let valid = 0;
    const cpu0 = process.cpuUsage();
    const main0 = mainThreadCpuSeconds();
    const threads0 = {};
    if (process.env.LOOM_BENCH_THREADS) {
      const { readdirSync } = await import('node:fs');
      for (const t of readdirSync('/proc/self/task')) {
        const st = readFileSync(`/proc/self/task/${t}/stat`, 'utf8');
        const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
        threads0[t] = Number(f[11]) + Number(f[12]);
      }
    }
    // Main-thread garbage collection during the run (count and pause time by kind).
    const { PerformanceObserver } = await import('node:perf_hooks');
    const gc = { count: 0, ms: 0, major: 0 };
    const gcObserver = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) {
        gc.count++;
        gc.ms += e.duration;
        if (e.detail?.kind !== 1) gc.major++;
      }
    });
    gcObserver.observe({ entryTypes: ['gc'] });
    const stats0 = verifier.stats();
    const start = process.hrtime.bigint();
    const pending = [];
    for (const b of blockBytes) {
      const t0 = process.hrtime.bigint();
      rememberOwnOf(b);
      pending.push(
        ledger.commitBlock(b).then((r) => {
          times.push(Number(process.hrtime.bigint() - t0) / 1e6);
          valid += r.validTxs;
          for (const k of Object.keys(phases)) phases[k] += r.phases[k];
        }),
      );
      if (pending.length >= inFlight) await pending.shift();
    }
    await Promise.all(pending);
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    await new Promise((r) => setImmediate(r));
    gcObserver.disconnect();
    // CPU time of the whole process (main thread and verify workers): the work, whatever the machine's load.
    const cpu = process.cpuUsage(cpu0);
    const cpuMsPerBlock = (cpu.user + cpu.system) / 1000 / blockBytes.length;
    const main1 = mainThreadCpuSeconds();
    if (process.env.LOOM_BENCH_THREADS) {
      const { readdirSync } = await import('node:fs');
      const now = {};
      for (const t of readdirSync('/proc/self/task')) {
        const st = readFileSync(`/proc/self/task/${t}/stat`, 'utf8');
        const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
        now[t] = Number(f[11]) + Number(f[12]);
      }
      const d = Object.entries(now)
        .map(([t, v]) => [t, v - (threads0[t] ?? 0)])
        .filter(([, v]) => v > 0)
        .sort((a, b) => b[1] - a[1]);
      const name = (t) => {
        try {
          return readFileSync(`/proc/self/task/${t}/comm`, 'utf8').trim();
        } catch {
          return t;
        }
      };
      console.log(
        '  thread CPU ms/block:',
        d
          .map(([t, v]) => `${t === String(process.pid) ? 'main' : name(t)}:${fmt((v * 10) / blockBytes.length)}`)
          .join(' '),
      );
    }
    const mainMsPerBlock = main0 === undefined ? undefined : ((main1 - main0) * 1000) / blockBytes.length;
    await profiler?.stop(label);
    await ledger.close();
    const txs = blockBytes.length * TXS_PER_BLOCK;
    times.sort((a, b) => a - b);
    console.log(
      `${label.padEnd(28)} ${fmt(txs / seconds).padStart(7)} tx/s   ${fmt(times[Math.floor(times.length / 2)])} ms/block median, ${fmt(times.at(-1))} ms max   (${valid}/${txs} valid)`,
    );
    const per = (k) => fmt(phases[k] / blockBytes.length);
    console.log(
      `${''.padEnd(28)} per block: checks ${per('checkMs')} ms, validation ${per('validateMs')} ms, write ${per('writeMs')} ms; ` +
        `CPU ${fmt(cpuMsPerBlock)} ms (all threads${mainMsPerBlock === undefined ? '' : `; main thread ${fmt(mainMsPerBlock)} ms`}) = ${fmt((TXS_PER_BLOCK * 1000) / cpuMsPerBlock)} tx per CPU-second`,
    );
    console.log(
      `${''.padEnd(28)} main-thread GC: ${gc.count} pauses (${gc.major} not scavenges), ${fmt(gc.ms / blockBytes.length)} ms/block`,
    );
    const stats1 = verifier.stats();
    const sigs = (k) => fmt(((stats1[k] ?? 0) - (stats0[k] ?? 0)) / blockBytes.length);
    console.log(
      `${''.padEnd(28)} signatures per block: ${sigs('workerVerified')} verified in workers, ${sigs('mainThreadVerified')} on the main thread, ${sigs('cacheHits')} cache hits`,
    );
    if (valid !== txs) throw new Error(`${label}: only ${valid} of ${txs} transactions were valid`);
    return { wall: txs / seconds, perCpu: (TXS_PER_BLOCK * 1000) / cpuMsPerBlock };
  }

  try {
    // Run 1: empty state; every transaction creates a new key (reads it as absent).
    const t0 = Date.now();
    const fresh = await buildBlocks(2 * blocks, (b, i) => `new-${b}-${i}`, null);
    console.log(`built ${2 * blocks} blocks in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    // Warm-up, unmeasured: the first blocks a process commits run unoptimized code, and the verify
    // workers start. WARMUP_BLOCKS blocks of their own (other keys, other signatures, so the
    // measured runs get no result-cache hits from them) on a scratch ledger, with the same verifier
    // pool the measured runs use, half one at a time and half 2 in flight.
    {
      const warm = await buildBlocks(WARMUP_BLOCKS, (b, i) => `warm-${b}-${i}`, null);
      const ledger = await openChannelLedger({ dataDir: join(dir, 'warmup'), channelId, signatureVerifier: verifier });
      await ledger.commitBlock(c.encodeBlock(genesis));
      const half = Math.floor(WARMUP_BLOCKS / 2);
      for (const b of warm.slice(0, half)) await ledger.commitBlock(b);
      await Promise.all(warm.slice(half).map((b) => ledger.commitBlock(b)));
      await ledger.close();
      await rm(join(dir, 'warmup'), { recursive: true, force: true });
    }
    const empty = await measure('state: 0 keys', join(dir, 'empty'), fresh.slice(0, blocks));
    const emptyPiped = await measure('state: 0 keys, 2 in flight', join(dir, 'empty'), fresh.slice(blocks), 2);

    // Run 2: pre-populated state (keys pre-0000000.. at version (0,0)); transactions read and update
    // keys spread evenly over all of them, so their reads and writes land all over the key space.
    const popDir = join(dir, 'populated');
    {
      const ledger = await openChannelLedger({ dataDir: popDir, channelId, signatureVerifier: verifier });
      await ledger.commitBlock(c.encodeBlock(genesis));
      await ledger.close();
    }
    // Straight into the state DB through its own applyUpdates, in large level batches (not by
    // committing blocks); the keys are new, so applyUpdates is told so instead of reading them.
    const kv = await openLevelKV(channelLedgerPath(popDir, channelId));
    const stores = await openLedgerStores(kv);
    const value = randomBytes(64);
    const pStart = Date.now();
    let written = 0;
    const BATCH = 50_000;
    const keyName = (n) => `pre-${String(n).padStart(7, '0')}`;
    while (written < prepopulate && Date.now() - pStart < budgetSeconds * 1000) {
      const n = Math.min(BATCH, prepopulate - written);
      const updates = [];
      const absent = new Map();
      for (let i = 0; i < n; i++) {
        const key = keyName(written + i);
        updates.push({ namespace: 'bench', key, kind: 'put', value, version: { blockNum: 0, txNum: 0 } });
        // (An older build without stateCacheKey reads them instead.)
        if (stateCacheKey) absent.set(stateCacheKey('bench', key), undefined);
      }
      const batch = kv.batch();
      await stores.state.applyUpdates(batch, updates, 1, absent);
      await batch.write();
      written += n;
    }
    await kv.close();
    const pSeconds = (Date.now() - pStart) / 1000;
    // The bulk load left LevelDB a compaction backlog of every key at once, which a peer that reached
    // this size by committing blocks worked off along the way (the measured runs still include the
    // compactions their own writes cause): compact it now, before measuring.
    const cStart = Date.now();
    {
      const { Level } = await import('level');
      const db = new Level(channelLedgerPath(popDir, channelId), { keyEncoding: 'view', valueEncoding: 'view' });
      await db.open();
      await db.compactRange(new Uint8Array(0), new Uint8Array(64).fill(0xff));
      await db.close();
    }
    const cSeconds = (Date.now() - cStart) / 1000;
    console.log(
      `pre-populated ${fmt(written)} keys in ${pSeconds.toFixed(1)} s (${fmt(written / pSeconds)} keys/s, level batches of ${fmt(BATCH)})${written < prepopulate ? `; time budget of ${budgetSeconds} s reached before ${fmt(prepopulate)}` : ''}; compacted in ${cSeconds.toFixed(1)} s`,
    );
    if (written < 2 * blocks * TXS_PER_BLOCK)
      throw new Error(`pre-populate at least ${2 * blocks * TXS_PER_BLOCK} keys (${TXS_PER_BLOCK} per block, 2 runs)`);
    const stride = Math.max(1, Math.floor(written / (2 * blocks * TXS_PER_BLOCK)));
    const updating = await buildBlocks(2 * blocks, (b, i) => keyName(((b - 1) * TXS_PER_BLOCK + i) * stride), {
      blockNum: 0,
      txNum: 0,
    });
    const full = await measure(`state: ${fmt(written)} keys`, popDir, updating.slice(0, blocks));
    const fullPiped = await measure(`state: ${fmt(written)} keys, 2 in flight`, popDir, updating.slice(blocks), 2);

    const pct = (a, b) => `${b >= a ? '+' : ''}${(((b - a) / a) * 100).toFixed(1)}%`;
    console.log(
      `\nvalidate+commit at 0 keys: ${fmt(empty.wall)} tx/s (${fmt(empty.perCpu)} tx per CPU-second); at ${fmt(written)} keys: ` +
        `${fmt(full.wall)} tx/s (${fmt(full.perCpu)} tx per CPU-second); difference ${pct(empty.wall, full.wall)} wall-clock, ` +
        `${pct(empty.perCpu, full.perCpu)} per CPU-second (load average ${loadavg()
          .map((x) => x.toFixed(1))
          .join(' ')})`,
    );
    console.log(
      `2 blocks in flight (pipelined): at 0 keys ${fmt(emptyPiped.wall)} tx/s (${fmt(emptyPiped.perCpu)} tx per CPU-second); ` +
        `at ${fmt(written)} keys ${fmt(fullPiped.wall)} tx/s (${fmt(fullPiped.perCpu)} tx per CPU-second); difference ${pct(emptyPiped.wall, fullPiped.wall)} wall-clock`,
    );
  } finally {
    await verifier.close();
    await rm(dir, { recursive: true, force: true });
  }
}
