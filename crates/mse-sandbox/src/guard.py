# mse: turn the calls the seccomp filter blocks into a clear exception (UX; the filter is the control).
def _mse_install_guard():
    import errno
    import os
    import sys
    import types

    if "mse_sandbox" in sys.modules and getattr(sys.modules["mse_sandbox"], "GUARD_INSTALLED", False):
        return

    class SubprocessNotAllowedError(PermissionError):
        """Raised instead of starting a process: an mse enclave runs only the app's own threads."""

    def _blocked(what):
        def raiser(*args, **kwargs):
            raise SubprocessNotAllowedError(
                errno.EPERM,
                f"subprocesses are not allowed inside an mse enclave: {what} was blocked "
                "(the app may start threads, not processes or programs)",
            )

        raiser.__name__ = what.rsplit(".", 1)[-1].rstrip("()")
        raiser.__qualname__ = raiser.__name__
        raiser.__doc__ = f"Blocked by mse: {what} cannot run inside an mse enclave."
        return raiser

    module = types.ModuleType("mse_sandbox", "Names installed by the mse node's sandbox guard.")
    module.SubprocessNotAllowedError = SubprocessNotAllowedError

    for name in (
        "system", "popen", "fork", "forkpty", "posix_spawn", "posix_spawnp",
        "execv", "execve", "execl", "execle", "execlp", "execlpe", "execvp", "execvpe",
        "spawnv", "spawnve", "spawnvp", "spawnvpe", "spawnl", "spawnle", "spawnlp", "spawnlpe",
    ):
        if hasattr(os, name):
            setattr(os, name, _blocked(f"os.{name}()"))

    import subprocess

    # Popen.__init__ closes the pipes it opened when _execute_child raises, so nothing leaks;
    # run/call/check_output/getoutput/asyncio subprocesses all go through it.
    subprocess.Popen._execute_child = _blocked("subprocess.Popen()")
    try:
        import _posixsubprocess

        # multiprocessing's spawn/forkserver helpers call it directly.
        _posixsubprocess.fork_exec = _blocked("_posixsubprocess.fork_exec()")
    except ImportError:
        pass

    import multiprocessing.process

    multiprocessing.process.BaseProcess.start = _blocked("multiprocessing.Process.start()")
    # Process pools create semaphores (in /dev/shm, out of the app's reach) before they start a
    # process: stop them first, with the clear message. ThreadPool overrides _setup_queues.
    import multiprocessing.pool
    import concurrent.futures.process

    multiprocessing.pool.Pool._setup_queues = _blocked("multiprocessing.Pool()")
    concurrent.futures.process.ProcessPoolExecutor.__init__ = _blocked("ProcessPoolExecutor()")
    try:
        import pty

        pty.fork = _blocked("pty.fork()")
        pty.spawn = _blocked("pty.spawn()")
    except ImportError:
        pass

    # uvloop starts processes itself (libuv's uv_spawn), not through subprocess.Popen; its event
    # loop class is a Python subclass, so its methods can be replaced.
    def _patch_uvloop(uvloop):
        uvloop.Loop.subprocess_exec = _blocked("asyncio.create_subprocess_exec() (uvloop)")
        uvloop.Loop.subprocess_shell = _blocked("asyncio.create_subprocess_shell() (uvloop)")

    if "uvloop" in sys.modules:
        _patch_uvloop(sys.modules["uvloop"])
    else:
        import importlib.abc
        import importlib.util

        if importlib.util.find_spec("uvloop") is not None:
            # Importing uvloop here would add 10-40 ms to every start, and most apps (every WSGI
            # one) never import it: patch it when, and if, something does.
            class _PatchedLoader(importlib.abc.Loader):
                def __init__(self, loader):
                    self._loader = loader

                def create_module(self, spec):
                    return self._loader.create_module(spec)

                def exec_module(self, module):
                    self._loader.exec_module(module)
                    _patch_uvloop(module)

                def __getattr__(self, name):
                    return getattr(self._loader, name)

            class _PatchUvloopOnImport(importlib.abc.MetaPathFinder):
                def find_spec(self, name, path=None, target=None):
                    if name != "uvloop":
                        return None
                    for finder in sys.meta_path:
                        if finder is self or not hasattr(finder, "find_spec"):
                            continue
                        spec = finder.find_spec(name, path, target)
                        if spec is not None:
                            if spec.loader is not None:
                                spec.loader = _PatchedLoader(spec.loader)
                            return spec
                    return None

            sys.meta_path.insert(0, _PatchUvloopOnImport())

    module.GUARD_INSTALLED = True
    sys.modules["mse_sandbox"] = module


_mse_install_guard()
del _mse_install_guard
