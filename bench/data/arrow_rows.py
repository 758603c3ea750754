"""One column of a memory-mapped Arrow file, read row by row without copying the file.

Every process that opens the same file maps the same pages, so the token ids of a corpus held by
the server and each worker process are in memory once, not once per process as Python lists
would be. Pickled (to a worker process) it travels as the file's path and the column's name.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow as pa


def read_table(path: str | Path) -> pa.Table:
    """The Arrow stream file `path` (as Dataset.map writes it), memory-mapped: zero-copy buffers."""
    return pa.ipc.open_stream(pa.memory_map(str(path))).read_all()


class ArrowRows:
    """Rows of a list column (a list per row) or of a scalar column (a number per row)."""

    def __init__(self, path: str | Path, column: str, table: pa.Table | None = None):
        self.path, self.column = str(Path(path).resolve()), column
        try:
            os.utime(self.path)  # used now: the token cache evicts by last use (token_cache.evict)
        except OSError:  # a read-only cache, another owner's file, or evicted after it was mapped
            pass
        chunks = (table if table is not None else read_table(path)).column(column).chunks
        self.starts = np.cumsum([0] + [len(c) for c in chunks])
        self.is_list = bool(chunks) and (pa.types.is_list(chunks[0].type) or pa.types.is_large_list(chunks[0].type))
        # per chunk: (offsets, values) for a list column, values for a scalar one; views of the map
        self.parts = [
            (c.offsets.to_numpy(), c.values.to_numpy(zero_copy_only=True)) if self.is_list else c.to_numpy()
            for c in chunks
        ]

    def __len__(self) -> int:
        return int(self.starts[-1])

    def _row(self, i: int):
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(f"row {i} of {len(self)} ({self.column})")
        chunk = int(np.searchsorted(self.starts, i, side="right")) - 1
        k = i - int(self.starts[chunk])
        if self.is_list:
            offsets, values = self.parts[chunk]
            return values[offsets[k] : offsets[k + 1]].tolist()
        return self.parts[chunk][k].item()

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self._row(i) for i in range(*index.indices(len(self)))]
        return self._row(int(index))

    def __iter__(self):
        return (self._row(i) for i in range(len(self)))

    def __eq__(self, other):
        """Equal to any sequence of the same rows (a list, another file's rows, an array): an
        Encoded read from the cache compares equal to the same encoding held in memory."""
        if isinstance(other, ArrowRows) and (other.path, other.column) == (self.path, self.column):
            return True
        try:
            return len(other) == len(self) and all(np.array_equal(a, b) for a, b in zip(self, other))
        except TypeError:
            return NotImplemented

    __hash__ = None  # mutable-sequence semantics, as a list

    def __reduce__(self):
        return ArrowRows, (self.path, self.column)  # the path travels; the receiver maps the file
