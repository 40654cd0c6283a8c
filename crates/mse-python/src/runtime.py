"""Helpers the app server runs inside the embedded interpreter (mse-python, src/interpreter.rs).

Kept small: everything per request happens in Rust. This file is compiled into the node binary.
"""

import os
import sys

# Python calls "main thread" the thread that first imports `threading`, and the C runtime the one
# that started the interpreter (the only one allowed `signal.set_wakeup_fd`). This module runs on
# the starting thread right after the start: importing `threading` here makes the two agree.
# Otherwise an ASGI loop thread that happens to import it first passes for the main thread, and
# uvloop then fails to start ("set_wakeup_fd only works in main thread").
import threading  # noqa: F401


def isolate(module_path, site_packages, env):
    """Make imports come only from the app, the linked stdlib and the configured site-packages."""
    stdlib = os.path.dirname(os.__file__)
    paths = [module_path, stdlib]
    dynload = os.path.join(stdlib, "lib-dynload")
    if os.path.isdir(dynload):
        paths.append(dynload)
    paths.extend(site_packages)
    sys.path[:] = paths
    sys.path_importer_cache.clear()
    # The code directory may be read-only, and bytecode written there would not be measured.
    sys.dont_write_bytecode = True
    if not getattr(sys, "argv", None):
        sys.argv = [""]
    os.environ.update(env)

    # `site` did not run at start (mse-python-init); give the app the builtins it would have set
    # (`exit`, `quit`, `help`, `copyright`, ...) without its path and `.pth` processing.
    import site

    site.setquit()
    site.setcopyright()
    site.sethelper()

    # The runtime's site-packages and their `.pth` files are measured: process them as any
    # interpreter would (namespace packages, vendored paths, `import` lines), then keep only the
    # import paths that lie inside what was measured. Returns the paths dropped.
    for d in site_packages:
        site.addsitedir(d)
    measured = _measured(paths)
    kept, dropped = [], []
    for p in sys.path:
        (kept if measured(p) else dropped).append(p)
    sys.path[:] = kept
    sys.path_importer_cache.clear()
    return dropped


def _measured(roots):
    """A test: does a path lie under one of `roots`, and not in the standard library's own
    site-packages? The node measures the standard library without that directory
    (mse_measure::python_runtime_roots), so nothing may be imported from it."""
    def under(path, root):
        return path == root or path.startswith(root.rstrip(os.sep) + os.sep)

    real_roots = [os.path.realpath(r) for r in roots]
    unmeasured = os.path.realpath(os.path.join(os.path.dirname(os.__file__), "site-packages"))

    def measured(path):
        real = os.path.realpath(path)
        return any(under(real, r) for r in real_roots) and not under(real, unmeasured)

    return measured


def check_start():
    """Right after the interpreter started: `site` did not run, and every module loaded so far
    comes from the (measured part of the) standard library. Returns what is wrong, or None."""
    if not sys.flags.no_site:
        return "the interpreter ran `site` at start (its .pth files are not measured)"
    measured = _measured([os.path.dirname(os.__file__)])
    foreign = []
    for name, module in list(sys.modules.items()):
        f = getattr(module, "__file__", None)
        if name != __name__ and f and not measured(f):
            foreign.append(f"{name} ({f})")
    if foreign:
        return "modules from outside the standard library were loaded at start: " + ", ".join(sorted(foreign))
    return None


def forget_other_apps(module, module_path):
    """Drop cached modules of the same top-level name loaded from another directory (a process
    that loads several apps, as the tests do, must not get an earlier app back)."""
    top = module.split(".")[0]
    root = os.path.realpath(module_path) + os.sep
    for name in [n for n in sys.modules if n == top or n.startswith(top + ".")]:
        f = getattr(sys.modules[name], "__file__", None)
        if f is None or not os.path.realpath(f).startswith(root):
            del sys.modules[name]


def interface_of(app):
    """The original's rule: a coroutine function, or a coroutine `__call__`, is ASGI."""
    import inspect

    if inspect.iscoroutinefunction(app) or inspect.iscoroutinefunction(getattr(app, "__call__", None)):
        return "asgi"
    return "wsgi"


def format_exception(exc):
    import traceback

    return "".join(traceback.format_exception(exc)).rstrip()
