"""``kb serve --processes N``: N web processes on one port, each accepting its own share.

uvicorn's own ``workers=N`` has every child accept from one shared socket, and asyncio
accepts every pending connection on each wake-up: whichever child wakes first takes
most of a burst of kept-alive connections and keeps them, while the other idles (two
processes served 40 to 74 searches/s from one run to the next on a 2-core host). Here
each child listens on its own socket bound with ``SO_REUSEPORT``, and the kernel spreads
new connections over the listening children evenly. The parent holds the port (bound,
not listening, so it is never handed a connection), restarts a child that dies, and
on SIGINT or SIGTERM sends each child SIGTERM, which uvicorn treats as Ctrl-C.
Where the platform lacks ``SO_REUSEPORT`` (not Linux), uvicorn's supervisor serves
instead.

A supervisor of our own rather than gunicorn's: gunicorn's ``reuse_port`` still shares
one socket among its workers, and it would be a second server to configure.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
from multiprocessing.process import BaseProcess
from typing import Any

log = logging.getLogger("kb.serve")

# <linux/prctl.h>
PR_SET_PDEATHSIG = 1
# uvicorn's default listen backlog.
BACKLOG = 2048
# A child that dies this soon after it started, this many times in a row, is not
# started again: it would only fail again (a port in use, a broken setting).
QUICK_DEATH_S = 10.0
MAX_QUICK_DEATHS = 3
# How long stopped children get to finish their requests before they are killed.
STOP_TIMEOUT_S = 30.0


def reuse_port_supported() -> bool:
    # Linux balances connections over SO_REUSEPORT listeners; macOS and the BSDs accept
    # the option but hand every connection to one of them.
    return sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


def bind(host: str, port: int, *, listen: bool) -> socket.socket:
    """A TCP socket on ``host:port`` that other sockets of this user may bind too."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    if listen:
        sock.listen(BACKLOG)
    return sock


def _child(app: str, options: dict[str, Any]) -> None:
    """One web process: its own listening socket, then uvicorn until SIGINT/SIGTERM."""
    import uvicorn

    # Out of the parent's process group, so a Ctrl-C in the terminal reaches the parent
    # alone and each child gets one signal from it (uvicorn takes a second one as "stop
    # now, drop the requests in flight"); and told to stop if the parent dies.
    os.setpgid(0, 0)
    _stop_with_parent()
    config = uvicorn.Config(app, factory=True, **options)
    server = uvicorn.Server(config)
    # uvicorn raises the signal it stopped for again once it is done (SIGINT: this
    # KeyboardInterrupt): nothing is left to do.
    with contextlib.suppress(KeyboardInterrupt):
        server.run(sockets=[bind(options["host"], options["port"], listen=True)])


def _stop_with_parent() -> None:
    """SIGTERM this process when its parent dies (Linux prctl PR_SET_PDEATHSIG)."""
    parent = os.getppid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not glibc/musl: a child may outlive a killed parent
        log.debug("no parent-death signal on this platform")
    if os.getppid() != parent:  # the parent died before the signal was asked for
        os.kill(os.getpid(), signal.SIGTERM)


def serve(app: str, count: int, options: dict[str, Any]) -> int:
    """Run ``count`` children serving the factory ``app`` ("module:function") with
    uvicorn ``options`` (host and port included) until SIGINT or SIGTERM; the exit
    status: 0, or 1 when the port cannot be had or children kept dying at start."""
    try:
        holder = bind(options["host"], options["port"], listen=False)
    except OSError as exc:  # in use by another program, or not an address of this host
        log.error("cannot listen on %s:%s: %s", options["host"], options["port"], exc)
        return 1
    options = {**options, "port": holder.getsockname()[1]}
    context = multiprocessing.get_context("spawn")
    stopping = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        stopping.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}

    def start() -> tuple[BaseProcess, float]:
        child = context.Process(target=_child, args=(app, options), name="kb-web")
        child.start()
        return child, time.monotonic()

    children = [start() for _ in range(count)]
    quick_deaths = 0
    status = 0
    try:
        while not stopping.wait(0.5):
            for i, (child, started) in enumerate(children):
                if child.is_alive():
                    continue
                quick_deaths = quick_deaths + 1 if time.monotonic() - started < QUICK_DEATH_S else 0
                if quick_deaths >= MAX_QUICK_DEATHS:
                    log.error("web processes keep exiting at start (status %s)", child.exitcode)
                    status = 1
                    stopping.set()
                    break
                log.warning(
                    "web process %s exited with %s; starting another", child.pid, child.exitcode
                )
                children[i] = start()
    finally:
        _stop(children)
        for s, handler in previous.items():
            signal.signal(s, handler)
        holder.close()
    return status


def _stop(children: list[tuple[BaseProcess, float]]) -> None:
    for child, _ in children:
        if child.is_alive() and child.pid is not None:
            # uvicorn finishes the requests in flight; a child still starting just ends
            # (SIGINT would print a KeyboardInterrupt from the middle of its imports).
            os.kill(child.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    for child, _ in children:
        child.join(max(0.0, deadline - time.monotonic()))
        if child.is_alive():
            child.kill()
            child.join(5)
