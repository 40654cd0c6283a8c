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

    try:
        import _posixsubprocess

        # subprocess and multiprocessing's spawn/forkserver helpers call it directly.
        _posixsubprocess.fork_exec = _blocked("_posixsubprocess.fork_exec()")
    except ImportError:
        pass

    # The modules below are patched when they are imported, or now if they already are: most apps
    # never import some of them (a WSGI app, uvloop; most apps, multiprocessing and pty), and
    # importing them all here cost every start ~1 MiB and 10-40 ms.
    def _patch_subprocess(subprocess):
        # Popen.__init__ closes the pipes it opened when _execute_child raises, so nothing leaks;
        # run/call/check_output/getoutput/asyncio subprocesses all go through it.
        subprocess.Popen._execute_child = _blocked("subprocess.Popen()")

    def _patch_process(process):
        process.BaseProcess.start = _blocked("multiprocessing.Process.start()")

    # Process pools create semaphores (in /dev/shm, out of the app's reach) before they start a
    # process: stop them first, with the clear message. ThreadPool overrides _setup_queues.
    def _patch_pool(pool):
        pool.Pool._setup_queues = _blocked("multiprocessing.Pool()")

    def _patch_process_pool(process):
        process.ProcessPoolExecutor.__init__ = _blocked("ProcessPoolExecutor()")

    def _patch_pty(pty):
        pty.fork = _blocked("pty.fork()")
        pty.spawn = _blocked("pty.spawn()")

    # uvloop starts processes itself (libuv's uv_spawn), not through subprocess.Popen; its event
    # loop class is a Python subclass, so its methods can be replaced.
    def _patch_uvloop(uvloop):
        uvloop.Loop.subprocess_exec = _blocked("asyncio.create_subprocess_exec() (uvloop)")
        uvloop.Loop.subprocess_shell = _blocked("asyncio.create_subprocess_shell() (uvloop)")

    patches = {
        "subprocess": _patch_subprocess,
        "multiprocessing.process": _patch_process,
        "multiprocessing.pool": _patch_pool,
        "concurrent.futures.process": _patch_process_pool,
        "pty": _patch_pty,
        "uvloop": _patch_uvloop,
    }
    # Already imported: patch now. The finder stays for all of them, so that a module imported
    # again (removed from sys.modules first) is patched again.
    for name, patch in patches.items():
        if name in sys.modules:
            patch(sys.modules[name])

    # Plain classes (the import system only calls these methods): importlib.abc would pull in
    # importlib.resources and more at every start.
    class _PatchedLoader:
        def __init__(self, loader, patch):
            self._loader = loader
            self._patch = patch

        def create_module(self, spec):
            return self._loader.create_module(spec)

        def exec_module(self, module):
            self._loader.exec_module(module)
            self._patch(module)

        def __getattr__(self, name):
            return getattr(self._loader, name)

    class _PatchOnImport:
        """First on sys.meta_path: finds the modules above through the other finders and
        wraps their loader so that the patch runs right after the module's own code."""

        def find_spec(self, name, path=None, target=None):
            patch = patches.get(name)
            if patch is None:
                return None
            for finder in sys.meta_path:
                if finder is self or not hasattr(finder, "find_spec"):
                    continue
                spec = finder.find_spec(name, path, target)
                if spec is not None:
                    if spec.loader is not None:
                        spec.loader = _PatchedLoader(spec.loader, patch)
                    return spec
            return None

    sys.meta_path.insert(0, _PatchOnImport())

    module.GUARD_INSTALLED = True
    sys.modules["mse_sandbox"] = module


_mse_install_guard()
del _mse_install_guard
