-- wrk script: POST /api/negotiate with a login token, as the browser client does.
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("LOGIN_TOKEN")
wrk.headers["Origin"] = "http://localhost:5173"
