"""Child processes: background workers (training, ingest jobs) that outlive the page that started
them and are reaped when they end, and `serve`'s Streamlit child that stops when `serve` is stopped."""

from __future__ import annotations

import signal
import subprocess
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def start_detached(cmd: Sequence[str], *, log_path: Path, env: Mapping[str, str] | None = None,
                   cwd: str | Path | None = None) -> subprocess.Popen:
    """Start `cmd` in its own session (closing a tab, a Streamlit rerun or Ctrl-C on the server does not
    stop it), output appended to `log_path`. A daemon thread waits for it, so a finished worker never
    lingers as a zombie while this process lives; if this process ends first, the child is adopted."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(list(cmd), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, env=dict(env) if env is not None else None,
                                cwd=str(cwd) if cwd is not None else None)
    threading.Thread(target=proc.wait, name=f"reap-{proc.pid}", daemon=True).start()
    return proc


def run_forwarding_signals(cmd: Sequence[str], *, env: Mapping[str, str] | None = None) -> int:
    """Run `cmd` in the foreground and pass SIGTERM/SIGINT/SIGHUP on to it, so stopping the parent
    stops the child too; returns the child's exit code."""
    proc = subprocess.Popen(list(cmd), env=dict(env) if env is not None else None)

    def forward(signum, _frame) -> None:
        if proc.poll() is None:
            proc.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in FORWARDED}
    try:
        while True:
            try:
                return proc.wait()
            except KeyboardInterrupt:  # only if a handler was replaced meanwhile: keep waiting for the child
                continue
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent() -> None:
    """Ask the kernel to SIGKILL this process when the one that started it dies (Linux; elsewhere a no-op).

    For children that must never outlive an ingest (tesseract, OCR workers), even one killed with
    kill -9, which runs no clean-up code. Called in the child: as a `preexec_fn` before exec, or first
    thing in a worker process. A parent that died before the call cannot be watched any more: then the
    child leaves at once."""
    import ctypes
    import os
    import sys

    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:  # adopted by init already: the parent died before the watch was set
        os._exit(1)
