// A stand-in custom handler for the host's integration tests: "any custom handler" that records
// every request it receives (one JSON line per request in $RECORD_FILE) and can be told to fail,
// crash or emit outputs. Behaviour is driven by the message/request itself so tests stay explicit:
//   queue message body {"fail": N}     -> HTTP 500 while DeliveryCount <= N
//   queue message body {"output": X}   -> Outputs.out = X
//   queue message body {"sleepMs": N}  -> answers after N ms
//   queue message body {"waitForFile": P} -> answers once file P exists (a gate the test opens)
//   queue message body {"badJson": true} -> 200 with text/plain (invalid for the host)
//   queue message body {"marketplace": "always-fail"} or with an item {"alwaysFail": true} or {"barcode": "always-fail"} -> HTTP 500 every time
//   POST /crash (HTTP function "crash") -> exits with code 1
import http from 'node:http';
import fs from 'node:fs';

const port = Number(process.env.FUNCTIONS_CUSTOMHANDLER_PORT);
const record = process.env.RECORD_FILE;
if (process.env.EXIT_AT_START) process.exit(Number(process.env.EXIT_AT_START));

function log(entry) {
  // Benchmarks run without RECORD_FILE so the handler stays trivial.
  if (record) fs.appendFileSync(record, JSON.stringify(entry) + '\n');
}

function decode(v) {
  // The host's double encoding: a JSON string holding JSON text.
  let x = v;
  for (let i = 0; i < 2 && typeof x === 'string'; i++) {
    try { x = JSON.parse(x); } catch { break; }
  }
  return x;
}

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const raw = Buffer.concat(chunks).toString('utf8');
    if (req.method === 'GET' && req.url === '/') { res.writeHead(200); res.end(); return; }
    let body = null;
    try { body = raw ? JSON.parse(raw) : null; } catch { body = raw; }
    log({ pid: process.pid, argv: process.argv.slice(2), method: req.method, path: req.url, headers: req.headers, body, at: Date.now() });
    const json = (status, obj) => {
      res.writeHead(status, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(obj));
    };
    if (req.url.startsWith('/api/')) {
      // Forwarded request: answer directly.
      res.writeHead(200, { 'Content-Type': 'application/json', 'X-Handler': 'forwarded' });
      res.end(JSON.stringify({ method: req.method, path: req.url, body: raw }));
      return;
    }
    const fn = req.url.slice(1);
    if (fn === 'crash') { process.exit(1); }
    const data = (body && body.Data) || {};
    const md = (body && body.Metadata) || {};
    if (md.DeliveryCount !== undefined) {
      const msg = decode(Object.values(data)[0]) || {};
      const count = Number(md.DeliveryCount);
      if (msg.fail !== undefined && count <= msg.fail) { json(500, { error: 'told to fail' }); return; }
      const told = msg.marketplace === 'always-fail' || (Array.isArray(msg.items) && msg.items.some((i) => i && (i.alwaysFail || i.barcode === 'always-fail')));
      if (told) { json(500, { error: 'told to fail' }); return; }
      if (msg.badJson) { res.writeHead(200, { 'Content-Type': 'text/plain' }); res.end('ok'); return; }
      const reply = () => json(200, { Outputs: msg.output !== undefined ? { out: msg.output } : {}, Logs: [`done ${md.MessageId}`], ReturnValue: null });
      if (msg.waitForFile) {
        const poll = () => (fs.existsSync(msg.waitForFile) ? reply() : setTimeout(poll, 10));
        poll();
      } else if (msg.sleepMs) setTimeout(reply, msg.sleepMs); else reply();
      return;
    }
    if (data.req) {
      const outputs = { res: { statusCode: 200, body: JSON.stringify({ received: data.req, metadata: md }), headers: { 'Content-Type': 'application/json' } } };
      if (data.req.Query && data.req.Query.out) outputs.out = { fromHttp: data.req.Query.out };
      json(200, { Outputs: outputs, Logs: [], ReturnValue: null });
      return;
    }
    json(200, { Outputs: {}, Logs: ['tick'], ReturnValue: null });
  });
});
server.listen(port, '127.0.0.1');
