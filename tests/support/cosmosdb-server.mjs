// Runs @vercel/cosmosdb-server (HTTPS, in memory) on 127.0.0.1, port from argv[2] (0 = free),
// and prints "READY <port>" once it listens. Used by the store's Cosmos test suite and the
// end-to-end tests. Two additions in front of the real server, both for tests:
//
// - Fault injection, driven over the same port: POST /_faults/throttle?count=N&retryAfterMs=M
//   answers the next N item writes with 429 and `x-ms-retry-after-ms: M`, as Cosmos DB does
//   when a partition is over its RU budget (the local server never throttles);
//   POST /_faults/down?on=true answers everything with 503 until ?on=false;
//   GET /_faults/stats returns {"throttled": n, "requests": n}.
// - Account keys: POST /_faults/keys?accept=K1,K2 (base64 keys, URL-encoded) makes it check every
//   request's master-key signature as Cosmos DB does (HMAC-SHA256 with the decoded key over
//   verb, resource type, resource link and x-ms-date, each on its own line, then an empty
//   line) and answer 401 when no accepted key made it; an empty list turns the check off (the
//   local server's default: it accepts any key). This is how a test regenerates a key.
// - A point read of an item gets `x-ms-documentdb-query-enablecrosspartition: true` added.
//   Without it the server crashes on a missing item (500 instead of 404: read-document.js
//   dereferences the absent document). The real service answers 404, and @azure/cosmos always
//   sends the header, which is why the bug goes unnoticed there; the Rust SDK does not send it.
import { createHmac } from "node:crypto";
import { createHttpsServer } from "@vercel/cosmosdb-server";

const port = Number(process.argv[2] ?? 0);
const server = createHttpsServer();
const [cosmos] = server.listeners("request");
server.removeAllListeners("request");

const faults = { throttle: 0, retryAfterMs: 100, down: false, keys: [] };
const stats = { throttled: 0, requests: 0 };
const ITEM = /^\/dbs\/[^/]+\/colls\/[^/]+\/docs(\/[^/]+)?\/?$/;

/** Resource type and link of a request path, as Cosmos DB's master-key signature names them. */
function resourceOf(pathname) {
  const parts = pathname.split("/").filter(Boolean).map(decodeURIComponent);
  // An odd count names a feed (its type is the last segment, its link the parent).
  return parts.length % 2 === 1
    ? { type: parts[parts.length - 1], link: parts.slice(0, -1).join("/") }
    : { type: parts[parts.length - 2] ?? "", link: parts.join("/") };
}

function signedWithAcceptedKey(req, pathname) {
  const header = decodeURIComponent(String(req.headers.authorization ?? ""));
  // Not URLSearchParams: it would read the base64 signature's "+" as a space.
  const sig = /(?:^|&)sig=([^&]+)/.exec(header)?.[1];
  if (!sig || !/^type=master&/.test(header)) return false;
  const { type, link } = resourceOf(pathname);
  const date = String(req.headers["x-ms-date"] ?? "").toLowerCase();
  const text = `${req.method.toLowerCase()}\n${type.toLowerCase()}\n${link}\n${date}\n\n`;
  return faults.keys.some((k) => createHmac("sha256", Buffer.from(k, "base64")).update(text).digest("base64") === sig);
}

function reply(res, status, body, headers = {}) {
  res.writeHead(status, { "content-type": "application/json", ...headers });
  res.end(JSON.stringify(body));
}

server.on("request", (req, res) => {
  const url = new URL(req.url, "https://localhost");
  if (url.pathname.startsWith("/_faults/")) {
    const what = url.pathname.slice("/_faults/".length);
    if (what === "throttle" && req.method === "POST") {
      faults.throttle = Number(url.searchParams.get("count") ?? 1);
      faults.retryAfterMs = Number(url.searchParams.get("retryAfterMs") ?? 100);
      return reply(res, 200, faults);
    }
    if (what === "down" && req.method === "POST") {
      faults.down = url.searchParams.get("on") === "true";
      return reply(res, 200, faults);
    }
    if (what === "keys" && req.method === "POST") {
      faults.keys = (url.searchParams.get("accept") ?? "").split(",").filter(Boolean);
      return reply(res, 200, { keys: faults.keys.length });
    }
    if (what === "stats") return reply(res, 200, stats);
    return reply(res, 404, { message: "unknown fault" });
  }
  stats.requests += 1;
  if (faults.down) {
    return reply(res, 503, { code: "ServiceUnavailable", message: "injected outage" });
  }
  if (faults.keys.length > 0 && !signedWithAcceptedKey(req, url.pathname)) {
    req.resume();
    return reply(res, 401, {
      code: "Unauthorized",
      message: "The input authorization token can't serve the request. The wrong key is being used.",
    });
  }
  const item = ITEM.exec(url.pathname);
  const isWrite = item && ["POST", "PUT", "PATCH", "DELETE"].includes(req.method)
    && !req.headers["x-ms-documentdb-isquery"] && req.headers["content-type"] !== "application/query+json";
  if (isWrite && faults.throttle > 0) {
    faults.throttle -= 1;
    stats.throttled += 1;
    req.resume();
    return reply(res, 429, { code: "TooManyRequests", message: "Request rate is large. More Request Units may be needed." },
      { "x-ms-retry-after-ms": String(faults.retryAfterMs), "x-ms-substatus": "3200" });
  }
  if (item && item[1] && req.method === "GET") {
    req.headers["x-ms-documentdb-query-enablecrosspartition"] = "true";
  }
  return cosmos(req, res);
});

server.listen(port, "127.0.0.1", () => {
  process.stdout.write(`READY ${server.address().port}\n`);
});
const stop = () => server.close(() => process.exit(0));
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
// Exit with the parent: the test harness closes stdin when it is done (or dies).
process.stdin.on("end", () => process.exit(0));
process.stdin.resume();
