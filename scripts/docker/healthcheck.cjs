// Container healthcheck (no shell needed): GET $LOOM_HEALTHCHECK_URL (or argv[2]) and exit 0 on
// HTTP 200. TLS is not verified here: this only asks the node in the same container whether it is
// up; clients verify against the network's TLS roots. No URL configured: healthy (one-shot roles).
// With LOOM_READY_FILE set (peers: written by `loom network serve-peer` once the chaincode is
// installed), that file must exist too.
'use strict';
const url = process.argv[2] || process.env.LOOM_HEALTHCHECK_URL;
const ready = process.env.LOOM_READY_FILE;
if (ready && !require('node:fs').existsSync(ready)) {
  process.stderr.write(`${ready} not written yet\n`);
  process.exit(1);
}
if (!url) process.exit(0);
const mod = url.startsWith('https:') ? require('node:https') : require('node:http');
const req = mod.get(url, { rejectUnauthorized: false, timeout: 4000 }, (res) => {
  res.resume();
  process.exit(res.statusCode === 200 ? 0 : 1);
});
req.on('timeout', () => req.destroy(new Error('timeout')));
req.on('error', (e) => {
  process.stderr.write(`${url}: ${e.message}\n`);
  process.exit(1);
});
