// Load generator for bench/local-host.sh (Node's built-in fetch; loopback only; bounded loops).
//   node local-host-client.mjs latency URL COUNT          -> p50/p99/mean of sequential POSTs (ms)
//   node local-host-client.mjs queue BASE QUEUE COUNT CONC -> messages/s enqueued and processed
//   node local-host-client.mjs fill BASE QUEUE COUNT CONC  -> enqueue only
//   node local-host-client.mjs drain BASE QUEUE COUNT      -> seconds until the queue is empty
const [mode, ...args] = process.argv.slice(2);

function pct(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function latency(url, count) {
  const body = JSON.stringify({ hello: 'world' });
  const opts = { method: 'POST', headers: { 'content-type': 'application/json' }, body };
  for (let i = 0; i < 200; i++) await (await fetch(url, opts)).arrayBuffer(); // warm-up
  const times = [];
  for (let i = 0; i < count; i++) {
    const t0 = process.hrtime.bigint();
    const r = await fetch(url, opts);
    await r.arrayBuffer();
    if (r.status >= 300) throw new Error(`HTTP ${r.status}`);
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  times.sort((a, b) => a - b);
  const mean = times.reduce((a, b) => a + b, 0) / times.length;
  console.log(JSON.stringify({ count, p50: pct(times, 50), p99: pct(times, 99), mean }));
}

async function fill(base, name, count, conc) {
  let next = 0;
  async function worker() {
    while (next < count) {
      const i = next++;
      const r = await fetch(`${base}/admin/queues/${name}/messages`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-meschain-control': '1' },
        body: JSON.stringify({ n: i }),
      });
      if (r.status !== 201) throw new Error(`enqueue HTTP ${r.status}`);
      await r.arrayBuffer();
    }
  }
  await Promise.all(Array.from({ length: conc }, worker));
}

async function queue(base, name, count, conc) {
  const t0 = Date.now();
  await fill(base, name, count, conc);
  const enqueued = Date.now();
  const deadline = Date.now() + 300_000;
  for (;;) {
    const qs = await (await fetch(`${base}/admin/queues`)).json();
    const q = qs.find((x) => x.name === name);
    if (q.active === 0) break;
    if (Date.now() > deadline) throw new Error('queue did not drain');
    await new Promise((r) => setTimeout(r, 20));
  }
  const done = Date.now();
  console.log(JSON.stringify({
    count,
    enqueue_per_s: Math.round(count / ((enqueued - t0) / 1000)),
    end_to_end_per_s: Math.round(count / ((done - t0) / 1000)),
    seconds: (done - t0) / 1000,
  }));
}

async function drain(base, name) {
  const t0 = Date.now();
  const deadline = t0 + 300_000;
  for (;;) {
    const qs = await (await fetch(`${base}/admin/queues`)).json();
    if (qs.find((x) => x.name === name).active === 0) break;
    if (Date.now() > deadline) throw new Error('queue did not drain');
    await new Promise((r) => setTimeout(r, 10));
  }
  return (Date.now() - t0) / 1000;
}

if (mode === 'drain') {
  const seconds = await drain(args[0], args[1]);
  console.log(JSON.stringify({ count: Number(args[2]), seconds, processed_per_s: Math.round(Number(args[2]) / seconds) }));
} else if (mode === 'fill') await fill(args[0], args[1], Number(args[2]), Number(args[3]));
else if (mode === 'latency') await latency(args[0], Number(args[1]));
else if (mode === 'queue') await queue(args[0], args[1], Number(args[2]), Number(args[3]));
else throw new Error('usage: latency URL COUNT | queue BASE QUEUE COUNT CONC');
