"""The ``tlearn`` command line: a thin layer over the Python API.

Only typer and the config are imported at start-up; torch and friends load inside the commands,
so ``tlearn --help`` answers at once. This is the single place where errors become output: a
``TlearnError`` prints one line on stderr and exits with its code (2; 130 for Ctrl-C).
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
import warnings
from typing import Optional

import typer

from . import info_commands, run_commands, serve_commands, train_commands  # noqa: F401  (they register the commands)
from .app import DEBUG, app


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings as one ``tlearn: warning:`` line (the data's: skipped files, class imbalance)."""
    print(f"tlearn: warning: {message}", file=file or sys.stderr)


def main(argv: Optional[list[str]] = None) -> None:
    """Console-script entry point: user errors become one line on stderr and exit code 2."""
    from ..errors import TlearnError

    warnings.showwarning = _show_warning
    try:
        app(args=argv, standalone_mode=False)
    except typer.Exit as done:
        sys.exit(done.exit_code)
    except typer.Abort:
        print("tlearn: interrupted", file=sys.stderr)
        sys.exit(130)
    except typer.TyperException as err:  # bad flag, wrong type, unknown command
        ctx = getattr(err, "ctx", None)
        if type(err).__name__ == "NoArgsIsHelpError" and ctx is not None:
            print(ctx.get_help())
            sys.exit(0)
        where = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        print(f"tlearn: error: {err.format_message()}{where}", file=sys.stderr)
        sys.exit(2)
    except TlearnError as err:
        if DEBUG["on"]:
            raise
        print(f"tlearn: error: {err}", file=sys.stderr)
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        print("tlearn: interrupted before training started; nothing to resume", file=sys.stderr)
        sys.exit(130)
    except OSError as err:  # the machine refused a read or write tlearn did not foresee (I/O error, permissions)
        if DEBUG["on"]:
            raise
        where = f": {err.filename}" if err.filename else ""
        print(f"tlearn: error: {err.strerror or err}{where} (run with --debug for the details)", file=sys.stderr)
        sys.exit(2)


def entry_point() -> None:
    """What the ``tlearn`` command runs: :func:`main`, then, after a successful command, a quick exit.

    Python's own teardown of the thousands of modules torch, torchvision and Lightning bring is a
    noticeable share of a short run (figures in docs/performance.md). So once the command has
    succeeded, the exit handlers run (loggers, worker processes, log files) and the output is
    flushed, then the process ends without that teardown. Errors, a thread still running and a
    profiler or tracer (cProfile, coverage: they write their files at exit) take the normal exit.
    """
    try:
        main()
    except SystemExit as done:
        if done.code not in (None, 0):
            raise
    if sys.getprofile() is not None or sys.gettrace() is not None:
        return
    if any(t.is_alive() and not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
        return
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
