-- wrk script: one SignalR upstream hub invocation, enveloped as the Functions host sends it.
-- The body is prepared by upstream.sh (signature computed with the access key).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = assert(io.open(os.getenv("UPSTREAM_BODY_FILE"), "rb"))
wrk.body = f:read("*a")
f:close()
