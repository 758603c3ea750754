"""User-facing errors: one line naming what is wrong and where, exit code 2."""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

EXIT_BAD_INPUT = 2


class BenchError(Exception):
    """Bad input from the user: a file, a name, a flag. Printed as one line, exit 2."""


class DataError(BenchError):
    """A malformed data file, named with its line where there is one."""

    def __init__(self, path: str | Path, message: str, line: int | None = None):
        where = f"{path}:{line}" if line is not None else f"{path}"
        super().__init__(f"{where}: {message}")
        self.path, self.line = str(path), line


def require_folder_of(flag: str, path: str | None) -> None:
    """A file a flag names, in a folder that does not exist: one line before the work, not a
    traceback when the file is written after it."""
    if path and not (folder := Path(path).expanduser().absolute().parent).is_dir():
        raise BenchError(f"{flag} {path}: folder {folder} does not exist")


class OneLineArgumentParser(argparse.ArgumentParser):
    """argparse prints usage plus an error; the contract wants one line and exit 2."""

    def error(self, message: str) -> NoReturn:
        print(f"error: {self.prog}: {message}", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)


def cli_entry(main: Callable[..., int | None]) -> Callable[..., int]:
    """Wrap a command's main(): BenchError becomes one stderr line and exit 2, no traceback."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs) -> int:
        try:
            return main(*args, **kwargs) or 0
        except BenchError as e:
            print(f"error: {e}", file=sys.stderr)
            return EXIT_BAD_INPUT

    return wrapper
