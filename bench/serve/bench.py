"""Serving benchmark driver (bench/serve/run calls it with bench/.venv's python).

Every server runs the same app files (bench/serve/apps) from the same venv, pinned to one CPU
with taskset, over TLS 1.3 with keep-alive; wrk runs pinned to the other CPU. Each cell: a
warm-up, then REPS measured runs; the table shows medians. RSS is the peak, sampled during the
measured runs, of the server's whole process tree.

Not part of the test suite: numbers depend on the machine and on what else runs on it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
APPS = HERE / "apps"
APP_ID = "63322f85-1ff8-4483-91ae-f18d7398d157"
MIB = 1 << 20


# --------------------------------------------------------------------------------------------
# Routes


@dataclass
class Route:
    name: str
    app: str  # "wsgi" | "asgi"
    method: str
    path: str
    body: bytes | None = None
    content_type: str | None = None
    connections: int = 64
    expect: bytes | None = None  # a check done once before the measurement
    throughput: bool = False  # report MiB/s too
    module: str = ""  # the app (MODULE:VARIABLE in apps/); "" = the interface's Flask/FastAPI app

    @property
    def spec(self) -> str:
        return self.module or ("wsgi_app:app" if self.app == "wsgi" else "asgi_app:app")


JSON_ITEM = json.dumps({"name": "lamp", "price": 12.5, "tags": ["home", "office", "light"]}).encode()
TEN_MIB = b"z" * (10 * MIB)

ROUTES = {
    "flask-hello": Route("flask-hello", "wsgi", "GET", "/", expect=b"hello"),
    "flask-64k": Route("flask-64k", "wsgi", "GET", "/64k", expect=b"x" * 65536),
    "flask-upload-10m": Route(
        "flask-upload-10m", "wsgi", "POST", "/upload", TEN_MIB, "application/octet-stream",
        connections=8, expect=str(len(TEN_MIB)).encode(), throughput=True,
    ),
    "flask-download-10m": Route(
        "flask-download-10m", "wsgi", "GET", "/download", connections=8,
        expect=b"y" * (10 * MIB), throughput=True,
    ),
    # The smallest app each interface allows (apps/null_app.py): what a request costs in the
    # server itself. The load generator may then be the bottleneck: read CPU µs/req, not req/s.
    "wsgi-null": Route("wsgi-null", "wsgi", "GET", "/", expect=b"hello", module="null_app:wsgi"),
    "fastapi-hello": Route("fastapi-hello", "asgi", "GET", "/", expect=b"hello"),
    "fastapi-echo": Route(
        "fastapi-echo", "asgi", "POST", "/echo", JSON_ITEM, "application/json",
        expect=json.dumps(json.loads(JSON_ITEM), separators=(",", ":")).encode(),
    ),
    "fastapi-upload-10m": Route(
        "fastapi-upload-10m", "asgi", "POST", "/upload", TEN_MIB, "application/octet-stream",
        connections=8, expect=str(len(TEN_MIB)).encode(), throughput=True,
    ),
    "fastapi-download-10m": Route(
        "fastapi-download-10m", "asgi", "GET", "/download", connections=8,
        expect=b"y" * (10 * MIB), throughput=True,
    ),
    "asgi-null": Route("asgi-null", "asgi", "GET", "/", expect=b"hello", module="null_app:asgi"),
}

# --------------------------------------------------------------------------------------------
# Servers: each takes (app kind, port, work dir) and returns argv + env. Same concurrency
# everywhere: one process, 8 app threads where the server has threads (rust-stack.md §3.1).


@dataclass
class Server:
    name: str
    apps: tuple[str, ...]
    build: object  # callable(kind, app spec, port, ctx) -> (argv, env)
    note: str = ""


@dataclass
class Ctx:
    venv: Path
    site_packages: Path
    cert: Path
    key: Path
    node_bin: Path
    work: Path
    threads: int
    node_access_log: bool = False
    baseline_bin: Path | None = None


def venv_bin(ctx: Ctx, name: str) -> str:
    return str(ctx.venv / "bin" / name)


def node_cmd(kind, spec, port, ctx: Ctx, binary: Path | None = None):
    root = Path(tempfile.mkdtemp(prefix="node-", dir=ctx.work))
    app_dir = root / "app"
    shutil.copytree(APPS, app_dir, ignore=shutil.ignore_patterns("__pycache__"))
    for d in ["home", "key", "module", "tmp", "sim"]:
        (root / d).mkdir()
    exp = int(time.time()) + 24 * 3600
    argv = [
        str(binary or ctx.node_bin), "--ratls", str(exp), "--host", "127.0.0.1", "--port", str(port),
        "--san", "127.0.0.1", "--app-dir", str(app_dir), "--id", APP_ID, "--tee", "sim",
        "--site-packages", str(ctx.site_packages), "--threads", str(ctx.threads),
        # No configuration is sent: clear code starts after 1 s without secrets, in the sandbox.
        "--timeout", "1", spec,
    ]
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(root / "home"), "KEY_PATH": str(root / "key"),
        "MODULE_PATH": str(root / "module"), "TMP_PATH": str(root / "tmp"),
        "MSE_SIM_DIR": str(root / "sim"),
        # No access log (none of the peers has one on): warn level filters it out.
        "RUST_LOG": "info" if ctx.node_access_log else "warn",
    }
    return argv, env


def granian_cmd(kind, spec, port, ctx: Ctx):
    argv = [
        venv_bin(ctx, "granian"), "--interface", kind, "--workers", "1", "--runtime-threads", "1",
        "--http", "1", "--no-ws", "--host", "127.0.0.1", "--port", str(port),
        "--ssl-certificate", str(ctx.cert), "--ssl-keyfile", str(ctx.key),
        "--log-level", "warning", "--no-access-log",
    ]
    if kind == "wsgi":
        argv += ["--blocking-threads", str(ctx.threads)]
    return argv + ["--working-dir", str(APPS), spec], {}


def gunicorn_cmd(kind, spec, port, ctx: Ctx):
    return [
        venv_bin(ctx, "gunicorn"), "-w", "1", "-k", "gthread", "--threads", str(ctx.threads),
        "-b", f"127.0.0.1:{port}", "--certfile", str(ctx.cert), "--keyfile", str(ctx.key),
        "--chdir", str(APPS), "--log-level", "warning", spec,
    ], {}


def hypercorn_cmd(kind, spec, port, ctx: Ctx):
    return [
        venv_bin(ctx, "hypercorn"), "-w", "1", "-b", f"127.0.0.1:{port}",
        "--certfile", str(ctx.cert), "--keyfile", str(ctx.key), "--log-level", "warning",
        spec,
    ], {}


def uvicorn_cmd(kind, spec, port, ctx: Ctx):
    return [
        venv_bin(ctx, "uvicorn"), "--workers", "1", "--host", "127.0.0.1", "--port", str(port),
        "--ssl-certfile", str(ctx.cert), "--ssl-keyfile", str(ctx.key), "--no-access-log",
        "--log-level", "warning", "--app-dir", str(APPS), spec,
    ], {}


SERVERS = {
    "mse-node": Server("mse-node", ("wsgi", "asgi"), node_cmd, "sandbox on, RA-TLS (sim), 8 threads"),
    # Only with --baseline-node: another build of the node, to compare two builds in one run.
    "mse-node@baseline": Server(
        "mse-node@baseline", ("wsgi", "asgi"),
        lambda kind, spec, port, ctx: node_cmd(kind, spec, port, ctx, ctx.baseline_bin),
        "--baseline-node build, same settings",
    ),
    "granian": Server("granian", ("wsgi", "asgi"), granian_cmd, "1 worker, 1 runtime thread (+ 8 blocking threads for WSGI)"),
    "gunicorn": Server("gunicorn", ("wsgi",), gunicorn_cmd, "gthread, 1 worker x 8 threads"),
    "uvicorn": Server("uvicorn", ("asgi",), uvicorn_cmd, "1 worker, uvloop + httptools"),
    "hypercorn": Server("hypercorn", ("wsgi", "asgi"), hypercorn_cmd, "1 worker, asyncio"),
}

# --------------------------------------------------------------------------------------------
# Helpers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tree_pids(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            stat = Path(f"/proc/{d}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(d))
    out, stack = [], [root]
    while stack:
        p = stack.pop()
        out.append(p)
        stack.extend(children.get(p, []))
    return out


def tree_rss_kib(root: int) -> int:
    total = 0
    for pid in tree_pids(root):
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


CLK_TCK = os.sysconf("SC_CLK_TCK")


def tree_cpu(root: int) -> tuple[float, int]:
    """CPU seconds (user + system) and voluntary context switches of the process tree so far.
    Counts, unlike rates, do not depend on how much of the CPU the machine gave the server."""
    ticks, switches = 0, 0
    for pid in tree_pids(root):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
            for task in Path(f"/proc/{pid}/task").iterdir():
                for line in (task / "status").read_text().splitlines():
                    if line.startswith("voluntary_ctxt_switches:"):
                        switches += int(line.split()[1])
        except OSError:
            pass
    return ticks / CLK_TCK, switches


class RssSampler(threading.Thread):
    def __init__(self, pid: int, every: float = 0.25):
        super().__init__(daemon=True)
        self.pid, self.every, self.peak, self.stop_flag = pid, every, 0, threading.Event()

    def run(self):
        while not self.stop_flag.is_set():
            self.peak = max(self.peak, tree_rss_kib(self.pid))
            self.stop_flag.wait(self.every)

    def stop(self) -> int:
        self.stop_flag.set()
        self.join()
        return self.peak


def https_request(port: int, route: Route, timeout: float = 10) -> tuple[int, bytes, dict]:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    req = urllib.request.Request(
        f"https://127.0.0.1:{port}{route.path}", data=route.body, method=route.method
    )
    if route.content_type:
        req.add_header("Content-Type", route.content_type)
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=timeout) as r:
            return r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read(), dict(e.headers)


def wait_ready(proc: subprocess.Popen, port: int, route: Route, within: float = 60) -> float:
    """Seconds until the first 200 from the app (not the node's configuration server)."""
    start = time.monotonic()
    while time.monotonic() - start < within:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            status, _, headers = https_request(port, route, timeout=2)
            if status == 200 and "Mse-Status" not in headers:
                return time.monotonic() - start
        except (OSError, ssl.SSLError):
            pass
        time.sleep(0.02)
    raise RuntimeError("server not ready in time")


def lua_script(route: Route, work: Path) -> Path | None:
    if route.method == "GET":
        return None
    body = work / f"{route.name}.body"
    body.write_bytes(route.body or b"")
    script = work / f"{route.name}.lua"
    script.write_text(
        f'wrk.method = "{route.method}"\n'
        f'wrk.headers["Content-Type"] = "{route.content_type}"\n'
        f'local f = io.open("{body}", "rb")\nwrk.body = f:read("*a")\nf:close()\n'
    )
    return script


UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def parse_latency(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not m:
        raise ValueError(text)
    return float(m.group(1)) * UNITS[m.group(2)]


@dataclass
class Run:
    rps: float
    p50: float
    p99: float
    errors: int
    requests: int = 0
    rss_kib: int = 0
    rep: int = 0
    # The server's CPU time and voluntary context switches per request during the run.
    cpu_us: float = 0.0
    switches: float = 0.0


def wrk(port: int, route: Route, seconds: float, script: Path | None, wrk_cpu: str) -> Run:
    argv = [
        "taskset", "-c", wrk_cpu, "wrk", "-t2", f"-c{route.connections}", f"-d{max(1, round(seconds))}s",
        "--latency", "--timeout", "10s",
    ]
    if script:
        argv += ["-s", str(script)]
    argv.append(f"https://127.0.0.1:{port}{route.path}")
    proc = subprocess.run(argv, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed: {proc.stderr.strip() or proc.stdout.strip()}")
    out = proc.stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    lat = dict(re.findall(r"^\s+(50|99)%\s+(\S+)\s*$", out, re.M))
    errors = 0
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if m:
        errors += int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        errors += sum(int(x) for x in m.groups())
    if "50" not in lat or "99" not in lat:
        raise RuntimeError(f"no completed requests: {out.strip()[-300:]}")
    m = re.search(r"(\d+) requests in", out)
    requests = int(m.group(1)) if m else 0
    return Run(rps, parse_latency(lat["50"]), parse_latency(lat["99"]), errors, requests)


@dataclass
class Cell:
    server: str
    route: str
    runs: list[Run] = field(default_factory=list)
    error: str | None = None

    def med(self, attr: str) -> float:
        return statistics.median(getattr(r, attr) for r in self.runs) if self.runs else float("nan")


@dataclass
class Running:
    server: Server
    kind: str
    port: int
    proc: subprocess.Popen
    log: object
    ready_s: float


def log_path(ctx: Ctx, server: Server, route: Route) -> Path:
    return ctx.work / f"{server.name}-{route.spec.replace(':', '-')}.log"


def start_server(server: Server, kind: str, probe: Route, ctx: Ctx, args) -> Running:
    port = free_port()
    argv, env = server.build(kind, probe.spec, port, ctx)
    full_env = dict(os.environ) if not server.name.startswith("mse-node") else {}
    full_env.update(env)
    full_env.pop("PYTHONPATH", None)
    log = open(log_path(ctx, server, probe), "wb")
    t0 = time.monotonic()
    proc = subprocess.Popen(
        ["taskset", "-c", args.server_cpu, *argv], env=full_env, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True, cwd=APPS,
    )
    running = Running(server, kind, port, proc, log, 0.0)
    try:
        wait_ready(proc, port, probe)
    except Exception:
        stop_server(running)
        raise
    running.ready_s = time.monotonic() - t0
    return running


def stop_server(r: Running) -> None:
    try:
        os.killpg(r.proc.pid, signal.SIGTERM)
        r.proc.wait(timeout=40)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(r.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        r.proc.wait()
    r.log.close()


def measure_kind(servers: list[Server], kind: str, routes: list[Route], ctx: Ctx, args) -> list[Cell]:
    """All servers of one interface run at once (idle ones cost nothing); for each route the
    measured runs are interleaved, server after server, in a rotating order. A drift of the
    machine during the cell (this VM loses the CPU for 100s of ms at a time, see
    docs/benchmarks.md) then hits every server alike, and run i of one server can be compared
    with run i of another."""
    cells: list[Cell] = []
    running: list[Running] = []
    try:
        for server in servers:
            try:
                r = start_server(server, kind, routes[0], ctx, args)
                running.append(r)
                print(f"  {server.name:18} ({routes[0].spec}; {server.note}) ready in {r.ready_s:.2f} s", flush=True)
            except Exception as e:  # noqa: BLE001 - one server failing must not stop the table
                print(f"  {server.name:18} FAILED to start: {e} (log: {log_path(ctx, server, routes[0])})", flush=True)
                for route in routes:
                    cells.append(Cell(server.name, route.name, error=f"did not start: {e}"))
        for route in routes:
            script = lua_script(route, ctx.work)
            live: list[tuple[Running, Cell]] = []
            for r in running:
                cell = Cell(r.server.name, route.name)
                cells.append(cell)
                try:
                    status, body, _ = https_request(r.port, route, timeout=60)
                    if status != 200 or (route.expect is not None and body != route.expect):
                        raise RuntimeError(f"check failed: {status} {body[:80]!r}")
                    wrk(r.port, route, args.warmup, script, args.wrk_cpu)
                    live.append((r, cell))
                except Exception as e:  # noqa: BLE001
                    cell.error = str(e)
            if route.name in INPROCESS_JOBS:
                # Measured in the same rotation as the servers, so that "x in-process" pairs
                # runs taken back to back, as "x Granian" does.
                live.append((None, Cell(INPROCESS, route.name)))
                cells.append(live[-1][1])
            for rep in range(args.reps):
                k = rep % len(live) if live else 0
                for r, cell in live[k:] + live[:k]:
                    if cell.error:
                        continue
                    if r is None:
                        try:
                            cell.runs.append(inprocess_run(ctx, route, args))
                            cell.runs[-1].rep = rep
                        except (subprocess.CalledProcessError, ValueError) as e:
                            cell.error = f"in-process loop failed: {e}"
                        continue
                    try:
                        sampler = RssSampler(r.proc.pid)
                        sampler.start()
                        cpu0, sw0 = tree_cpu(r.proc.pid)
                        run = wrk(r.port, route, args.duration, script, args.wrk_cpu)
                        cpu1, sw1 = tree_cpu(r.proc.pid)
                        run.rss_kib = sampler.stop()
                        n = max(run.requests, 1)
                        run.cpu_us = (cpu1 - cpu0) * 1e6 / n
                        run.switches = (sw1 - sw0) / n
                        run.rep = rep
                        cell.runs.append(run)
                    except Exception as e:  # noqa: BLE001
                        cell.error = str(e)
            for _, cell in live:
                print(f"  {cell.server[:18]:18} {route.name:22} {fmt_cell(cell)}", flush=True)
    finally:
        for r in running:
            stop_server(r)
    return cells


def fmt_cell(c: Cell) -> str:
    if not c.runs:
        return c.error or "no runs"
    rps = [r.rps for r in c.runs]
    if c.server == INPROCESS:
        return f"{c.med('rps'):9.0f} calls/s ({min(rps):.0f}-{max(rps):.0f})"
    errs = sum(r.errors for r in c.runs)
    return (
        f"{c.med('rps'):9.0f} req/s ({min(rps):.0f}-{max(rps):.0f})  p50 {c.med('p50'):6.2f} ms"
        f"  p99 {c.med('p99'):6.2f} ms  RSS {max(r.rss_kib for r in c.runs) / 1024:5.0f} MiB"
        f"  CPU {c.med('cpu_us'):7.0f} us/req  {c.med('switches'):6.2f} switches/req"
        + (f"  ERRORS {errs}" if errs else "")
        + (f"  (stopped: {c.error})" if c.error else "")
    )


def paired_ratio(c: Cell, base: Cell | None) -> float | None:
    """Median over reps of (this server's run i) / (the base's run i): runs i were taken back to
    back, so the machine's drift between reps cancels out."""
    if base is None or not base.runs or not c.runs:
        return None
    theirs = {r.rep: r.rps for r in base.runs}
    ratios = [r.rps / theirs[r.rep] for r in c.runs if theirs.get(r.rep)]
    return statistics.median(ratios) if ratios else None


# --------------------------------------------------------------------------------------------
# How much of the wall-clock time a CPU actually runs: a busy loop pinned to it, timing the gaps.

AVAILABILITY = r"""
import sys, time
seconds = float(sys.argv[1])
prev = time.monotonic(); end = prev + seconds; lost = 0.0; worst = 0.0
while prev < end:
    now = time.monotonic()
    gap = now - prev
    if gap > 0.001:
        lost += gap
        worst = max(worst, gap)
    prev = now
print(1 - lost / seconds, worst * 1000)
"""


def availability(ctx: Ctx, cpu: str, seconds: float = 5) -> tuple[float, float]:
    """(share of the time the CPU ran this loop, longest stall in ms). On an idle dedicated CPU
    this is ~1.0 and a few ms; a lower share means the host (or another process) takes the CPU."""
    out = subprocess.run(
        ["taskset", "-c", cpu, venv_bin(ctx, "python"), "-c", AVAILABILITY, str(seconds)],
        capture_output=True, text=True, check=True,
    ).stdout.split()
    return float(out[0]), float(out[1])


def report_availability(ctx: Ctx, args, when: str) -> dict[str, tuple[float, float]]:
    got = {}
    for cpu in dict.fromkeys([args.server_cpu, args.wrk_cpu]):
        share, worst = availability(ctx, cpu)
        got[cpu] = (share, worst)
        print(f"CPU {cpu} {when}: ran {share:.0%} of 5 s, longest stall {worst:.0f} ms", flush=True)
    return got


# --------------------------------------------------------------------------------------------
# In-process call rates (no server): the limit a server can approach.

INPROC_WSGI = r"""
import io, sys, time
sys.path.insert(0, sys.argv[1])
from wsgi_app import app
path, seconds = sys.argv[2], float(sys.argv[3])
base = {
    "REQUEST_METHOD": "GET", "SCRIPT_NAME": "", "PATH_INFO": path, "QUERY_STRING": "",
    "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "443", "SERVER_PROTOCOL": "HTTP/1.1",
    "REMOTE_ADDR": "127.0.0.1", "REMOTE_PORT": "50000", "HTTP_HOST": "127.0.0.1",
    "HTTP_USER_AGENT": "wrk", "HTTP_ACCEPT": "*/*", "wsgi.version": (1, 0), "wsgi.url_scheme": "https",
    "wsgi.errors": sys.stderr, "wsgi.multithread": True, "wsgi.multiprocess": False,
    "wsgi.run_once": False,
}
def start_response(status, headers, exc_info=None):
    return None
def call():
    env = base.copy()
    env["wsgi.input"] = io.BytesIO(b"")
    it = app(env, start_response)
    try:
        for chunk in it:
            pass
    finally:
        if hasattr(it, "close"):
            it.close()
for _ in range(2000):
    call()
n, end = 0, time.perf_counter() + seconds
t0 = time.perf_counter()
while time.perf_counter() < end:
    for _ in range(100):
        call()
    n += 100
print(n / (time.perf_counter() - t0))
"""

INPROC_ASGI = r"""
import asyncio, json, sys, time
sys.path.insert(0, sys.argv[1])
from asgi_app import app
path, seconds, method = sys.argv[2], float(sys.argv[3]), sys.argv[4]
body = sys.argv[5].encode()
scope = {
    "type": "http", "asgi": {"version": "3.0", "spec_version": "2.4"}, "http_version": "1.1",
    "method": method, "scheme": "https", "path": path, "raw_path": path.encode(), "query_string": b"",
    "root_path": "", "headers": [(b"host", b"127.0.0.1"), (b"content-type", b"application/json"),
    (b"content-length", str(len(body)).encode())], "client": ("127.0.0.1", 50000),
    "server": ("127.0.0.1", 443), "state": {},
}
async def main():
    async def receive():
        return {"type": "http.request", "body": body, "more_body": False}
    async def send(message):
        pass
    async def call():
        await app(dict(scope), receive, send)
    for _ in range(2000):
        await call()
    n, end = 0, time.perf_counter() + seconds
    t0 = time.perf_counter()
    while time.perf_counter() < end:
        for _ in range(100):
            await call()
        n += 100
    return n / (time.perf_counter() - t0)
try:
    import uvloop
    uvloop.install()
except ImportError:
    pass
print(asyncio.run(main()))
"""


INPROCESS = "in-process (no server)"
# The app called in a loop, in one process pinned like the servers: the limit a server can near.
INPROCESS_JOBS = {
    "flask-hello": [INPROC_WSGI, "/"],
    "flask-64k": [INPROC_WSGI, "/64k"],
    "fastapi-hello": [INPROC_ASGI, "/", "GET", ""],
    "fastapi-echo": [INPROC_ASGI, "/echo", "POST", JSON_ITEM.decode()],
}


def inprocess_run(ctx: Ctx, route: Route, args) -> Run:
    code, path, *extra = INPROCESS_JOBS[route.name]
    r = subprocess.run(
        ["taskset", "-c", args.server_cpu, venv_bin(ctx, "python"), "-c", code, str(APPS), path,
         str(args.duration), *extra],
        capture_output=True, text=True, check=True,
    )
    return Run(float(r.stdout.strip()), 0.0, 0.0, 0)


# --------------------------------------------------------------------------------------------
# Start-up time of the node: process start to first 200 from the app.


# The installation's very first start (empty digest cache): measured once, reported on its own.
FIRST_OF_INSTALLATION = "first start of the installation (empty digest cache) + configuration POST"


def node_startup(ctx: Ctx, args) -> dict[str, float]:
    """(a) restart path: code already in MODULE_PATH, no configuration phase (needs storage that
    outlives the process, so --insecure-no-sandbox); (b) first start, sandbox on: the client
    POSTs the configuration as soon as the node listens; time from process start to the first 200.

    All starts share one MSE_SIM_DIR, as the starts of one installation do: the simulation root
    and the node's digest cache of the runtime live there. The very first start of the
    installation (empty cache: the node reads the whole runtime) is reported on its own.
    """
    results = {}
    route = ROUTES["flask-hello"]
    sim = ctx.work / "sim-installation"
    sim.mkdir(exist_ok=True)
    plan = [(FIRST_OF_INSTALLATION, 1),
            ("restart (code installed)", args.startup_reps),
            ("first start + configuration POST", args.startup_reps)]
    for label, reps in plan:
        times = []
        for _ in range(reps):
            port = free_port()
            argv, env = node_cmd("wsgi", ROUTES["flask-hello"].spec, port, ctx)
            env["MSE_SIM_DIR"] = str(sim)
            i = argv.index("--timeout")
            del argv[i : i + 2]
            root = Path(env["HOME"]).parent
            if label.startswith("restart"):
                shutil.copytree(root / "app", root / "module", dirs_exist_ok=True)
                argv.insert(-1, "--insecure-no-sandbox")
            t0 = time.monotonic()
            proc = subprocess.Popen(["taskset", "-c", args.server_cpu, *argv], env=env,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
            try:
                if not label.startswith("restart"):
                    cfg = Route("cfg", "wsgi", "POST", "/", json.dumps({"uuid": APP_ID}).encode(), "application/json")
                    while True:  # until the node listens; then exactly one configuration
                        if proc.poll() is not None:
                            raise RuntimeError("node exited")
                        try:
                            status, body, _ = https_request(port, cfg, timeout=60)
                        except (OSError, ssl.SSLError):
                            time.sleep(0.005)
                            continue
                        if status != 200:
                            raise RuntimeError(f"configuration refused: {status} {body[:200]!r}")
                        break
                wait_ready(proc, port, route)
                times.append((time.monotonic() - t0) * 1000)
            finally:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=40)
        results[label] = statistics.median(times)
        print(f"  node start, {label}: median {results[label]:.0f} ms of {[round(t) for t in times]}", flush=True)
        if label == FIRST_OF_INSTALLATION and not (sim / "digest-cache").is_file():
            raise RuntimeError(f"the node left no digest cache in {sim}: every start would read the whole runtime")
    return results


# --------------------------------------------------------------------------------------------


def table(cells: list[Cell]) -> str:
    by = {(c.server, c.route): c for c in cells}
    lines = [
        "| route | server | req/s (median) | min–max | MiB/s | p50 ms | p99 ms | peak RSS MiB | CPU µs/req | switches/req | × Granian | × in-process |",
        "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for rname, route in ROUTES.items():
        servers = [c for c in cells if c.route == rname]
        if not servers:
            continue
        g = by.get(("granian", rname))
        ip = by.get((INPROCESS, rname))
        for c in servers:
            if c is ip:
                continue
            if not c.runs:
                lines.append(f"| {rname} | {c.server} | failed: {c.error} | | | | | | | | | |")
                continue
            rps = [r.rps for r in c.runs]
            mibs = f"{c.med('rps') * len(TEN_MIB) / MIB:.0f}" if route.throughput else ""
            ratio = paired_ratio(c, g)
            xg = f"{ratio:.2f}" if ratio is not None else ""
            xip = paired_ratio(c, ip)
            xi = f"{xip:.2f}" if xip is not None else ""
            errs = sum(r.errors for r in c.runs)
            name = f"**{c.server}**" if c.server == "mse-node" else c.server
            lines.append(
                f"| {rname} | {name} | {c.med('rps'):,.0f}{' (' + str(errs) + ' errors)' if errs else ''}"
                f" | {min(rps):,.0f}–{max(rps):,.0f} | {mibs} | {c.med('p50'):.2f} | {c.med('p99'):.2f}"
                f" | {max(r.rss_kib for r in c.runs) / 1024:.0f} | {c.med('cpu_us'):,.0f} | {c.med('switches'):.2f}"
                f" | {xg} | {xi} |"
            )
        if ip is not None and ip.runs:
            rates = [r.rps for r in ip.runs]
            lines.append(f"| {rname} | {INPROCESS} | {ip.med('rps'):,.0f} calls/s | {min(rates):,.0f}–{max(rates):,.0f} | | | | | | | | 1.00 |")
        elif ip is not None:
            lines.append(f"| {rname} | {INPROCESS} | failed: {ip.error} | | | | | | | | | |")
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--venv", type=Path, default=REPO / "bench/.venv")
    p.add_argument("--node", type=Path, default=REPO / "target/release/mse-node")
    p.add_argument("--duration", type=int, default=10, help="seconds per measured run")
    p.add_argument("--warmup", type=int, default=3, help="seconds of warm-up per cell")
    p.add_argument("--reps", type=int, default=3, help="measured runs per cell")
    p.add_argument("--threads", type=int, default=8, help="app threads (node, granian, gunicorn)")
    p.add_argument("--servers", default=",".join(s for s in SERVERS if s != "mse-node@baseline"),
                   help="comma-separated subset")
    p.add_argument("--routes", default=",".join(ROUTES), help="comma-separated subset")
    p.add_argument("--server-cpu", default="0")
    p.add_argument("--wrk-cpu", default="1")
    p.add_argument("--startup-reps", type=int, default=5)
    p.add_argument("--baseline-node", type=Path,
                   help="another mse-node binary, run as server mse-node@baseline next to mse-node")
    p.add_argument("--node-access-log", action="store_true", help="keep the node's access log on (stdout to a file)")
    p.add_argument("--json", type=Path, help="write raw results here")
    args = p.parse_args()
    args.routes = [r for r in args.routes.split(",") if r]
    args.servers = [s for s in args.servers.split(",") if s and s != "mse-node@baseline"]
    if args.baseline_node:
        args.servers.insert(1, "mse-node@baseline")

    site = subprocess.run(
        [str(args.venv / "bin/python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()
    work = Path(tempfile.mkdtemp(prefix="mse-bench-"))
    cert, key = work / "cert.pem", work / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )
    ctx = Ctx(args.venv, Path(site), cert, key, args.node, work, args.threads, args.node_access_log,
              args.baseline_node)
    print(f"work dir {work}; load before: {os.getloadavg()}", flush=True)
    avail = {"before": report_availability(ctx, args, "before")}

    cells: list[Cell] = []
    for kind in ["wsgi", "asgi"]:
        servers = [SERVERS[s] for s in args.servers if kind in SERVERS[s].apps]
        if not servers:
            continue
        picked = [ROUTES[r] for r in args.routes if ROUTES[r].app == kind]
        # One start of the servers per app (the Flask or FastAPI app, then the null app).
        for spec in dict.fromkeys(r.spec for r in picked):
            routes = [r for r in picked if r.spec == spec]
            print(f"{kind.upper()} servers on {spec}, runs interleaved:", flush=True)
            cells += measure_kind(servers, kind, routes, ctx, args)
    startup: dict[str, float] = {}

    def save():
        if args.json:
            args.json.write_text(json.dumps({
                "cells": [{"server": c.server, "route": c.route, "error": c.error, "runs": [r.__dict__ for r in c.runs]} for c in cells],
                "startup_ms": startup, "availability": avail, "args": {k: str(v) for k, v in vars(args).items()},
            }, indent=1))

    # The table first: a failure in what follows must not lose the runs.
    print()
    print(table(cells), flush=True)
    save()
    if "mse-node" in args.servers and args.startup_reps > 0:
        print("node start:", flush=True)
        startup = node_startup(ctx, args)
        print()
        for k, v in startup.items():
            n = 1 if k == FIRST_OF_INSTALLATION else args.startup_reps
            print(f"node start to first 200 ({k}): {v:.0f} ms (median of {n})")
    print(f"load after: {os.getloadavg()}", flush=True)
    avail["after"] = report_availability(ctx, args, "after")
    save()
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
