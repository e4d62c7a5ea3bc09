#!/usr/bin/env python3
"""Start-up time and idle memory of the `handler` binary, measured the way the Functions host
sees them: from exec to the first answered `GET /` (polled every 0.5 ms, the host polls every
25 ms), then VmRSS from /proc once idle. Also mints the HS256 login token the load test uses.

usage: handler_probe.py startup HANDLER RUNS   -> prints JSON {start_ms_p50, start_ms_max, idle_rss_kb}
       handler_probe.py token SECRET ISSUER AUDIENCE -> prints a login token (role admin)
"""
import base64, hashlib, hmac, json, os, socket, statistics, subprocess, sys, time


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def token(secret: str, issuer: str, audience: str) -> str:
    now = int(time.time())
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = {"sub": "bench-user", "roles": ["admin"], "iss": issuer, "aud": audience, "iat": now, "exp": now + 3600}
    body = b64(json.dumps(claims).encode())
    sig = hmac.new(secret.encode(), f"{header}.{body}".encode(), hashlib.sha256).digest()
    return f"{header}.{body}.{b64(sig)}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_root(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.05) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            return s.recv(16).startswith(b"HTTP/1.1")
    except OSError:
        return False


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def startup(handler: str, runs: int) -> dict:
    times, rss = [], []
    for _ in range(runs):
        port = free_port()
        env = dict(os.environ, FUNCTIONS_CUSTOMHANDLER_PORT=str(port), RUST_LOG="warn")
        t0 = time.perf_counter()
        proc = subprocess.Popen([handler], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = t0 + 5
        while not get_root(port):
            if time.perf_counter() > deadline or proc.poll() is not None:
                proc.kill()
                sys.exit(f"handler did not answer GET / within 5 s (exit code {proc.poll()})")
            time.sleep(0.0005)
        times.append((time.perf_counter() - t0) * 1000)
        time.sleep(0.5)  # idle
        rss.append(rss_kb(proc.pid))
        proc.terminate()
        proc.wait(timeout=5)
    return {
        "runs": runs,
        "start_ms_p50": round(statistics.median(times), 2),
        "start_ms_max": round(max(times), 2),
        "idle_rss_kb_p50": int(statistics.median(rss)),
    }


if __name__ == "__main__":
    if sys.argv[1:2] == ["token"]:
        print(token(*sys.argv[2:5]))
    elif sys.argv[1:2] == ["startup"]:
        print(json.dumps(startup(sys.argv[2], int(sys.argv[3]))))
    else:
        sys.exit(__doc__)
