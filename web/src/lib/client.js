// The realtime client of the dashboard: one SignalR connection through our `negotiate`, as the
// original design's MesChainSignalRClient described it, with its flaws corrected:
// - the caller is who the bearer token says (no user id or role sent as headers or arguments);
// - `accessTokenFactory` is asked again on every (re)connect, so a reconnect carries a fresh token;
// - reconnects back off exponentially with jitter, capped, and never give up on network trouble,
//   but stop at once when the server says the token is no longer good (401) or not allowed (403):
//   retrying those only hammers the server, the user must sign in again;
// - group membership is per connection id in SignalR Service, so it is rejoined after every
//   (re)connect, not just the first.
//
// `signalR` (the official @microsoft/signalr namespace) is passed in: the browser build uses the
// official browser bundle, the unit tests the npm module, and nothing here depends on which.

/** @typedef {"disconnected" | "connecting" | "connected" | "reconnecting"} ConnectionState */

/**
 * Why the connection is not up, in terms the page can act on.
 * @typedef {object} ConnectionProblem
 * @property {"unauthorized" | "forbidden" | "unavailable" | "network"} kind
 * @property {number} [status] HTTP status of the failed negotiate, when there was one.
 * @property {string} message Safe to show: the server's words or a network error.
 */

/**
 * The admin snapshot (functions/src/dashboard.rs), sent to group `admins` on MesChainAdminHub.
 * @typedef {object} AdminSnapshot
 * @property {string} generatedAt
 * @property {number} [uptimeSeconds]
 * @property {{ total: number, users: number, hubs: { hub: string, connections: number, users: number }[] }} [connections]
 * @property {MarketplaceStatus[]} [marketplaces]
 * @property {{ negotiate: Rate, hubMethods: Rate, syncs: Rate }} [rates]
 * @property {{ negotiateP50Ms: number | null, negotiateP95Ms: number | null }} [latency]
 * @property {{ signalr: Health, store: Health, secrets: Health }} [health]
 * @property {{ ordersToday: number, revenueToday: string, currency: string }} [business] revenueToday is an exact decimal string
 * @property {{ pending: number, dropped: number }} [analytics]
 */
/** @typedef {{ lastMinute: number, lastHour: number, errorsLastMinute: number }} Rate */
/** @typedef {{ status: "healthy" | "degraded" | "down", detail?: string | null }} Health */
/**
 * @typedef {object} MarketplaceStatus
 * @property {string} marketplace
 * @property {"idle" | "running" | "failed"} status
 * @property {number | null} progress
 * @property {string | null} lastSuccessAt
 * @property {number} itemsPushedToday
 * @property {string | null} lastError
 */
/**
 * Sync progress (crates/marketplace/src/progress.rs), to `marketplace:{name}` and to `admins`.
 * @typedef {object} MarketplaceSyncUpdate
 * @property {string} syncId
 * @property {string} marketplace
 * @property {string} operation
 * @property {"queued" | "running" | "completed" | "failed"} status
 * @property {number} processed
 * @property {number} total
 * @property {number} progress 0-100
 * @property {number} failedItems
 * @property {string | null} startedAt
 * @property {string | null} finishedAt
 * @property {string | null} requestedBy
 */
/** @typedef {{ message: string, level: "info" | "warning" | "error" | "critical", from?: string | null, at?: string }} SystemAlert */
/** @typedef {Record<string, unknown>} InventoryUpdate */
/** @typedef {Record<string, unknown>} OrderNotification */
/** @typedef {Record<string, unknown>} MetricsUpdate */

/**
 * The events the server sends, by client method name.
 * @typedef {object} ServerEvents
 * @property {AdminSnapshot} updateAdminDashboard
 * @property {SystemAlert} systemAlert
 * @property {MarketplaceSyncUpdate} marketplaceSyncUpdate
 * @property {InventoryUpdate} inventoryUpdate
 * @property {OrderNotification} orderNotification
 * @property {MetricsUpdate} metricsUpdate
 */

/** @type {(keyof ServerEvents)[]} */
export const SERVER_EVENTS = [
  "updateAdminDashboard",
  "systemAlert",
  "marketplaceSyncUpdate",
  "inventoryUpdate",
  "orderNotification",
  "metricsUpdate",
];

export const HUBS = Object.freeze({
  admin: "MesChainAdminHub",
  marketplace: "MesChainMarketplaceHub",
  dashboard: "MesChainDashboardHub",
});

export const MARKETPLACES = ["trendyol", "hepsiburada", "n11", "amazon", "ebay", "ozon"];
/** The metric groups `SubscribeToDashboard` offers (hub_methods.rs `METRICS`). */
export const DASHBOARD_METRICS = ["performance", "business", "sync", "orders", "inventory", "errors"];

/**
 * The sync operations `negotiate` says this user's hub can start (`syncOperations`: the model's
 * `SyncOperation::startable_from_hub`); the page offers these and no others.
 * @param {string} negotiateBody The JSON body of a negotiate answer.
 * @returns {string[] | null} null when the answer carries no such list (the service's own negotiate).
 */
export function syncOperationsFromNegotiate(negotiateBody) {
  try {
    const ops = JSON.parse(negotiateBody).syncOperations;
    return Array.isArray(ops) ? ops.filter((o) => typeof o === "string") : null;
  } catch {
    return null;
  }
}

/**
 * What `negotiate` tells a hub that starts syncs about them: whether the store's catalogue is
 * configured (`catalog`: `{configured, host?, reason?}`) and how each marketplace would sync
 * (`connectors`: `{trendyol: "live" | "sandbox" | "off", ...}`).
 * @param {string} negotiateBody The JSON body of a negotiate answer.
 * @returns {{ catalog: object | null, connectors: Record<string, string> | null } | null} null when absent.
 */
export function syncSetupFromNegotiate(negotiateBody) {
  try {
    const { catalog, connectors } = JSON.parse(negotiateBody);
    const object = (v) => (v && typeof v === "object" && !Array.isArray(v) ? v : null);
    if (!object(catalog) && !object(connectors)) return null;
    return { catalog: object(catalog), connectors: object(connectors) };
  } catch {
    return null;
  }
}

/**
 * The hub `negotiate` chose, read from its answer's client URL (`…/client/?hub=meschainadminhub`;
 * the service lowercases hub names). The page never maps roles to hubs itself: the server's rule
 * (functions/src/hubs.rs) is the only one, and the page shows the view of the hub it got.
 * @param {string} negotiateBody The JSON body of a negotiate answer.
 * @returns {string | null} One of {@link HUBS}, or null when the answer names none of them.
 */
export function hubFromNegotiate(negotiateBody) {
  let url;
  try {
    url = new URL(JSON.parse(negotiateBody).url, "http://negotiate.invalid/");
  } catch {
    return null;
  }
  const hub = url.searchParams.get("hub")?.toLowerCase();
  return Object.values(HUBS).find((h) => h.toLowerCase() === hub) ?? null;
}

/**
 * The calls that put a fresh connection into its role's groups. Admins also ask for a
 * snapshot at once, so the page has figures without waiting for the next broadcast tick.
 * @returns {[string, ...unknown[]][]}
 */
export function groupJoinsFor(hub) {
  switch (hub) {
    case HUBS.admin:
      return [["JoinAdminGroup"], ["HandleAdminCommand", "requestDashboardUpdate", {}]];
    case HUBS.marketplace:
      return MARKETPLACES.map((m) => ["JoinMarketplaceGroup", m]);
    default:
      return [["SubscribeToDashboard", DASHBOARD_METRICS]];
  }
}

/**
 * Delay before reconnect attempt `attempt` (0-based): the first at once, then exponential from
 * `baseMs`, capped at `capMs`, with "equal jitter" (half fixed, half random) so a restarted
 * service is not hit by every browser in the same millisecond.
 */
export function backoffDelay(attempt, { baseMs = 1000, capMs = 30_000, random = Math.random } = {}) {
  if (attempt <= 0) return 0;
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.min(attempt - 1, 30));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

/** Thrown by a token source that cannot give a valid token without the user signing in again. */
export class SignInRequiredError extends Error {
  constructor(message = "Your session has expired: sign in again") {
    super(message);
    this.name = "SignInRequiredError";
  }
}

/** The server's message from an error body (`{"error": "..."}` or plain text), trimmed for display. */
export function serverMessage(body, fallback) {
  if (typeof body !== "string") return fallback;
  // The official client's HttpError message is the response body plus ": Status code 'N'".
  body = body.replace(/:\s*Status code '\d+'\s*$/, "").trim();
  if (body === "") return fallback;
  try {
    const parsed = JSON.parse(body);
    // `message` is the sentence; `error` is a code when both are present (OAuth style).
    if (parsed && typeof parsed.message === "string") return parsed.message;
    if (parsed && typeof parsed.error === "string") return parsed.error;
  } catch {
    // Not JSON: plain text.
  }
  return body.length > 300 ? `${body.slice(0, 300)}…` : body;
}

/** Turns what failed during negotiate or start into a problem the page can act on. */
export function classifyFailure(error, lastHttpError) {
  if (error instanceof SignInRequiredError || error?.name === "SignInRequiredError") {
    return { kind: "unauthorized", message: error.message };
  }
  const status = lastHttpError?.status;
  if (status === 401) {
    return { kind: "unauthorized", status, message: serverMessage(lastHttpError.body, "Your sign-in was not accepted") };
  }
  if (status === 403) {
    return { kind: "forbidden", status, message: serverMessage(lastHttpError.body, "You do not have access to this hub") };
  }
  if (typeof status === "number" && status > 0) {
    return { kind: "unavailable", status, message: serverMessage(lastHttpError.body, `The server answered ${status}`) };
  }
  return { kind: "network", message: networkMessage(error) };
}

/** A network failure in words: the official client's text names its internals. */
export function networkMessage(error) {
  const text = error?.message || String(error);
  if (/Failed to fetch|NetworkError|ECONNREFUSED|fetch failed|WebSocket failed to connect|Load failed/i.test(text)) {
    return "the realtime service cannot be reached";
  }
  return text.replace(/^Failed to complete negotiation with the server:\s*/, "");
}

/** Problems a retry cannot fix. */
const isFinal = (problem) => problem.kind === "unauthorized" || problem.kind === "forbidden";

/**
 * One live connection to the dashboard's hub.
 */
export class MesChainClient {
  /**
   * @param {object} options
   * @param {any} options.signalR The @microsoft/signalr namespace.
   * @param {() => Promise<string>} options.getToken A valid login token; throws SignInRequiredError when there is none.
   * @param {string} [options.apiBase] Where `negotiate` lives ("/api" beside the page, or an absolute URL).
   * @param {{ baseMs?: number, capMs?: number, random?: () => number }} [options.retry]
   * @param {number} [options.logLevel] signalR.LogLevel; default Warning.
   * @param {{ log(level: number, message: string): void }} [options.logger] Where the SignalR client logs.
   */
  constructor({ signalR, getToken, apiBase = "/api", retry = {}, logLevel, logger }) {
    this.signalR = signalR;
    this.getToken = getToken;
    /** The hub negotiate chose for this user (one of HUBS); null until it has answered. */
    this.hub = null;
    /** @type {string[]} The sync operations the hub can start (from negotiate). */
    this.syncOperations = [];
    /** What negotiate said about the catalogue and each marketplace's connector (see syncSetupFromNegotiate). */
    this.syncSetup = null;
    this.apiBase = apiBase.replace(/\/+$/, "");
    this.retry = retry;
    /** @type {ConnectionState} */
    this.state = "disconnected";
    /** @type {ConnectionProblem | null} */
    this.problem = null;
    this.attempt = 0;
    /** @type {Map<string, Set<Function>>} */
    this.handlers = new Map();
    /** @type {Set<Function>} */
    this.stateHandlers = new Set();
    /** @type {{ status: number, body: string } | null} */
    this.lastHttpError = null;
    this.stopped = true;
    this.timer = null;
    this.connection = this.#build(logger ?? handledFailuresLogger(signalR, logLevel ?? signalR.LogLevel.Warning));
  }

  #build(logging) {
    const { signalR } = this;
    const client = this;
    // Wraps the default HTTP client to remember the last failed negotiate: the SignalR client
    // turns it into a generic error, and the page needs its status (401, 403, 503) and words.
    class RememberingHttpClient extends signalR.HttpClient {
      constructor() {
        super();
        this.inner = new signalR.DefaultHttpClient(new signalR.NullLogger());
      }
      async send(request) {
        try {
          const response = await this.inner.send(request);
          if (request.url?.includes("/negotiate")) {
            client.lastHttpError = null;
            // The service's own negotiate (after the redirect) answers a connection id, no url.
            const body = String(response.content ?? "");
            client.hub = hubFromNegotiate(body) ?? client.hub;
            client.syncOperations = syncOperationsFromNegotiate(body) ?? client.syncOperations;
            client.syncSetup = syncSetupFromNegotiate(body) ?? client.syncSetup;
          }
          return response;
        } catch (e) {
          if (typeof e?.statusCode === "number" && request.url?.includes("/negotiate")) {
            client.lastHttpError = { status: e.statusCode, body: e.message ?? "" };
          }
          throw e;
        }
      }
      getCookieString(url) {
        return this.inner.getCookieString(url);
      }
    }
    const connection = new signalR.HubConnectionBuilder()
      // No hub asked for: negotiate gives each user the hub their roles allow (its default).
      .withUrl(this.apiBase, {
        accessTokenFactory: () => this.#token(),
        httpClient: new RememberingHttpClient(),
      })
      .withAutomaticReconnect({
        nextRetryDelayInMilliseconds: (ctx) => {
          const problem = ctx.retryReason ? classifyFailure(ctx.retryReason, this.lastHttpError) : null;
          if (problem && isFinal(problem)) {
            this.problem = problem;
            return null;
          }
          this.attempt = ctx.previousRetryCount + 1;
          const delay = backoffDelay(ctx.previousRetryCount, this.retry);
          this.nextAttemptAt = Date.now() + delay;
          if (ctx.previousRetryCount > 0 && problem) {
            // Say why the last attempt failed, not only that the connection was lost.
            this.problem = problem;
            this.#setState("reconnecting");
          }
          return delay;
        },
      })
      .configureLogging(logging)
      .build();
    for (const event of SERVER_EVENTS) {
      connection.on(event, (payload) => this.#emit(event, payload));
    }
    connection.onreconnecting((error) => {
      this.problem = { kind: "network", message: error?.message || "the realtime service closed the connection" };
      this.#setState("reconnecting");
    });
    connection.onreconnected(() => this.#joined());
    connection.onclose((error) => {
      if (this.stopped) return this.#setState("disconnected");
      this.problem ??= error ? classifyFailure(error, this.lastHttpError) : { kind: "network", message: "Connection closed" };
      this.#setState("disconnected");
      if (!isFinal(this.problem)) this.#schedule();
    });
    return connection;
  }

  async #token() {
    try {
      return await this.getToken();
    } catch (e) {
      // Remembered so the failure is classified as "sign in again", not as a network error.
      this.problem = classifyFailure(e, null);
      throw e;
    }
  }

  /**
   * Subscribes to a server event; returns the unsubscribe function.
   * @template {keyof ServerEvents} K
   * @param {K} event
   * @param {(payload: ServerEvents[K]) => void} handler
   */
  on(event, handler) {
    if (!SERVER_EVENTS.includes(event)) throw new Error(`unknown event ${event}`);
    let set = this.handlers.get(event);
    if (!set) this.handlers.set(event, (set = new Set()));
    set.add(handler);
    return () => set.delete(handler);
  }

  /** @param {(state: ConnectionState, problem: ConnectionProblem | null, attempt: number) => void} handler */
  onState(handler) {
    this.stateHandlers.add(handler);
    return () => this.stateHandlers.delete(handler);
  }

  #emit(event, payload) {
    for (const h of this.handlers.get(event) ?? []) {
      try {
        h(payload);
      } catch (e) {
        console.error(`handler of ${event} failed`, e);
      }
    }
  }

  #setState(state) {
    this.state = state;
    for (const h of this.stateHandlers) h(state, this.problem, this.attempt);
  }

  /** Connects (and keeps reconnecting until `stop`). Resolves after the first attempt, whatever its outcome. */
  async start() {
    this.stopped = false;
    await this.#attempt();
  }

  async #attempt() {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.problem = null;
    this.#setState(this.attempt === 0 ? "connecting" : "reconnecting");
    try {
      await this.connection.start();
    } catch (e) {
      if (this.stopped) return;
      this.problem = this.problem?.kind === "unauthorized" ? this.problem : classifyFailure(e, this.lastHttpError);
      this.#setState("disconnected");
      if (!isFinal(this.problem)) this.#schedule();
      return;
    }
    await this.#joined();
  }

  #schedule() {
    const delay = backoffDelay(this.attempt + 1, this.retry);
    this.attempt += 1;
    this.nextAttemptAt = Date.now() + delay;
    this.timer = setTimeout(() => this.#attempt(), delay);
  }

  async #joined() {
    this.attempt = 0;
    this.problem = null;
    this.#setState("connected");
    // Independent calls, sent together: the first figures arrive one round trip sooner.
    const results = await Promise.allSettled(groupJoinsFor(this.hub).map(([method, ...args]) => this.connection.invoke(method, ...args)));
    const failed = results.find((r) => r.status === "rejected");
    if (failed && this.connection.state === this.signalR.HubConnectionState.Connected) {
      // The connection is up but the page would miss updates: say so rather than pretend.
      const message = hubErrorMessage(failed.reason);
      console.warn(`joining groups failed: ${message}`);
      this.problem = { kind: "unavailable", message: `Could not subscribe to live updates (${message})` };
      this.#setState("connected");
    }
  }

  /** Calls a hub method; rejects with the server's message (safe to show) on failure. */
  async invoke(method, ...args) {
    if (this.connection.state !== this.signalR.HubConnectionState.Connected) {
      throw new Error("Not connected: wait for the connection to come back");
    }
    try {
      return await this.connection.invoke(method, ...args);
    } catch (e) {
      throw new Error(hubErrorMessage(e));
    }
  }

  async stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.connection.stop();
  }
}

/**
 * The SignalR client logs every failed (re)connect at Error level. This client handles those
 * failures (they become the connection state and banner the page shows), so they are logged as
 * warnings: the console's errors stay for what nothing handled.
 */
export function handledFailuresLogger(signalR, minimum) {
  return {
    log(level, message) {
      if (level < minimum || level === signalR.LogLevel.None) return;
      const line = `[signalr] ${message}`;
      if (level >= signalR.LogLevel.Warning) console.warn(line);
      else console.info(line);
    },
  };
}

/**
 * The server's message from a failed invocation. The official client prefixes it with
 * "An unexpected error occurred invoking 'X' on the server." only when the server hides details;
 * ours sends the reason itself, which the client wraps as "... HubException: reason".
 */
export function hubErrorMessage(error) {
  const text = error?.message ?? String(error);
  const m = text.match(/HubException:\s*(.*)$/s);
  return (m ? m[1] : text).trim();
}
