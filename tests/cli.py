"""A command's main() run inside the test process, as a subprocess would run it: its exit code,
stdout and stderr. A run_all subprocess over a 4-cell tiny grid took 17 s here, about 7 of them
importing torch and transformers, loading the tokenizer and starting the fork server: work the
test process does once. Tests of what only a separate process shows (a SIGKILL, what the shell
sees on stderr, a library's own log lines, output a worker process writes) keep a real
subprocess: each command keeps at least one such test of its one-line errors."""

from __future__ import annotations

import contextlib
import io
import subprocess

import run_all
from bench import run
from bench.data import __main__ as data_cli


def run_main(main, *args, check: bool = True) -> subprocess.CompletedProcess:
    """`main([*args])` with its output captured; `check` raises, as subprocess.run's does, on a
    nonzero exit."""
    argv = [str(a) for a in args]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exit_:  # argparse's errors exit
            code = exit_.code if isinstance(exit_.code, int) else 1
    proc = subprocess.CompletedProcess(argv, code or 0, out.getvalue(), err.getvalue())
    if check and proc.returncode:
        raise subprocess.CalledProcessError(proc.returncode, argv, proc.stdout, proc.stderr)
    return proc


def run_all_main(*args, check: bool = True) -> subprocess.CompletedProcess:
    """`python run_all.py ARGS`, in this process."""
    return run_main(run_all.main, *args, check=check)


def bench_run(*args, check: bool = True) -> subprocess.CompletedProcess:
    """`python -m bench.run ARGS`, in this process."""
    return run_main(run.main, *args, check=check)


def bench_data(*args, check: bool = True) -> subprocess.CompletedProcess:
    """`python -m bench.data ARGS`, in this process."""
    return run_main(data_cli.main, *args, check=check)
