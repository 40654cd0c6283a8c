"""What crates/mse-node/tests/sandbox.rs asks the app to try inside the node.

Every probe returns a JSON-able dict: {"ok": True, ...} when the operation succeeded, or
{"ok": False, "type": ..., "errno": ..., "message": ..., "permission_error": ...} with the
exception it raised. Shared by the WSGI (Flask) and the ASGI (FastAPI) app of this directory.
"""

import asyncio
import concurrent.futures
import errno
import multiprocessing
import multiprocessing.pool
import os
import subprocess
import sys
import tempfile
import threading

# Taken at import time, before the node's guard replaces os.fork: only the seccomp filter stands
# between this reference and a new process.
_SAVED_FORK = os.fork


def _outcome(fn):
    try:
        value = fn()
    except BaseException as e:  # noqa: BLE001 - the test wants to see whatever was raised
        return {
            "ok": False,
            "type": type(e).__name__,
            "permission_error": isinstance(e, PermissionError),
            "errno": getattr(e, "errno", None),
            "message": str(e),
        }
    return {"ok": True, "value": value}


def _fork_and_exit(fork):
    pid = fork()
    if pid == 0:  # only if a regression let the fork through: never run the server twice
        os._exit(0)
    os.waitpid(pid, 0)
    return pid


def _mp_start(method):
    p = multiprocessing.get_context(method).Process(target=len, args=((),))
    p.start()
    p.join()
    return p.exitcode


def _async_subprocess():
    async def spawn():
        proc = await asyncio.create_subprocess_exec("/bin/true")
        return await proc.wait()

    return asyncio.run(spawn())


def _uvloop_subprocess():
    # Imported only now, after the guard: uvloop is patched when it is imported.
    import uvloop

    async def spawn():
        proc = await asyncio.create_subprocess_exec("/bin/true")
        return await proc.wait()

    loop = uvloop.new_event_loop()
    try:
        return loop.run_until_complete(spawn())
    finally:
        loop.close()


FORBIDDEN = {
    "subprocess_run": lambda: subprocess.run(["/bin/true"]).returncode,
    "subprocess_shell": lambda: subprocess.run("true", shell=True).returncode,
    "subprocess_check_output": lambda: subprocess.check_output(["echo", "hi"]).decode(),
    "os_system": lambda: os.system("true"),
    "os_popen": lambda: os.popen("true").read(),
    "os_fork": lambda: _fork_and_exit(os.fork),
    "os_posix_spawn": lambda: os.posix_spawn("/bin/true", ["true"], {}),
    "os_posix_spawnp": lambda: os.posix_spawnp("true", ["true"], {}),
    "os_execv": lambda: os.execv("/bin/true", ["true"]),
    "multiprocessing_fork": lambda: _mp_start("fork"),
    "multiprocessing_spawn": lambda: _mp_start("spawn"),
    "multiprocessing_forkserver": lambda: _mp_start("forkserver"),
    "multiprocessing_pool": lambda: multiprocessing.Pool(2).map(abs, [-1]),
    "process_pool_executor": lambda: list(concurrent.futures.ProcessPoolExecutor(2).map(abs, [-1])),
    "asyncio_subprocess": _async_subprocess,
    "uvloop_subprocess": _uvloop_subprocess,
}


def forbidden(name):
    """Try one way of starting a process."""
    if name == "saved_fork":
        return _outcome(lambda: _fork_and_exit(_SAVED_FORK))
    fn = FORBIDDEN.get(name)
    if fn is None:
        return {"ok": False, "type": "KeyError", "message": f"no probe {name}"}
    return _outcome(fn)


def threads():
    """Threads, thread pools and asyncio's to_thread all work."""

    def run():
        results = []
        lock = threading.Lock()

        def square(i):
            with lock:
                results.append(i * i)

        ts = [threading.Thread(target=square, args=(i,)) for i in range(8)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            plus = list(pool.map(lambda x: x + 1, range(16)))
        with multiprocessing.pool.ThreadPool(2) as tp:
            absolute = tp.map(abs, [-1, -2])

        async def main():
            return await asyncio.to_thread(lambda: 42)

        if _in_event_loop():
            with concurrent.futures.ThreadPoolExecutor(1) as one:
                answer = one.submit(asyncio.run, main()).result()
        else:
            answer = asyncio.run(main())
        return {
            "squares": sorted(results),
            "plus": plus,
            "abs": absolute,
            "to_thread": answer,
            "active": threading.active_count(),
        }

    return _outcome(run)


def _in_event_loop():
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def read(path):
    def run():
        with open(path, "rb") as f:
            return len(f.read())

    return _outcome(run)


def listdir(path):
    return _outcome(lambda: sorted(os.listdir(path)))


def write(path, data):
    def run():
        with open(path, "w") as f:
            f.write(data)
        return len(data)

    return _outcome(run)


def remove(path):
    return _outcome(lambda: os.remove(path))


def marker(value):
    """Writes `value` the ways an app does: files in HOME and TMP_PATH, a tempfile, SQLite."""

    def run():
        import sqlite3

        home, tmp = os.environ["HOME"], os.environ["TMP_PATH"]
        written = []
        for d in (home, tmp):
            p = os.path.join(d, "marker.txt")
            with open(p, "w") as f:
                f.write(value * 64)
                f.flush()
                os.fsync(f.fileno())
            written.append(p)
        with tempfile.NamedTemporaryFile("w", delete=False, suffix=".marker") as f:
            f.write(value)
            written.append(f.name)
        db = os.path.join(home, "marker.db")
        con = sqlite3.connect(db)
        con.execute("create table if not exists t (x text)")
        con.execute("insert into t values (?)", (value,))
        con.commit()
        con.close()
        written.append(db)
        return written

    return _outcome(run)


def fill(path, limit_mb):
    """Writes 1 MiB blocks to `path` until an error or `limit_mb`; reports how far it got."""
    block = b"\xa5" * (1 << 20)
    written = 0
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        while written < limit_mb << 20:
            written += os.write(fd, block)
        os.fsync(fd)
    except OSError as e:
        return {
            "ok": False,
            "type": type(e).__name__,
            "errno": e.errno,
            "enospc": e.errno == errno.ENOSPC,
            "message": str(e),
            "written": written,
        }
    finally:
        os.close(fd)
    return {"ok": True, "written": written}


def env():
    keys = ("HOME", "TMP_PATH", "TMPDIR", "MODULE_PATH", "KEY_PATH", "SECRETS_PATH")
    return {k: os.environ.get(k) for k in keys} | {"pid": os.getpid(), "python": sys.version}


def dispatch(op, args):
    """The one entry point of both apps: POST /probe {"op": ..., "args": {...}}."""
    table = {
        "forbidden": lambda: forbidden(args["name"]),
        "threads": threads,
        "read": lambda: read(args["path"]),
        "listdir": lambda: listdir(args["path"]),
        "write": lambda: write(args["path"], args.get("data", "x")),
        "remove": lambda: remove(args["path"]),
        "marker": lambda: marker(args["value"]),
        "fill": lambda: fill(args["path"], int(args["limit_mb"])),
        "env": env,
    }
    fn = table.get(op)
    if fn is None:
        return {"ok": False, "type": "KeyError", "message": f"unknown op {op}"}
    return fn()
