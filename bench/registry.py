"""One generic registry: register by decorator, look up with a 'did you mean'; and the two
extension points' registries, methods and partitioners, filled by discovering the top-level
`baselines` and `partitions` packages (bench never imports them: this is the one dynamic import)."""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from bench.errors import BenchError

T = TypeVar("T")


class Registry(Generic[T]):
    """Name -> object. Unknown names raise BenchError listing the valid ones."""

    def __init__(self, kind: str, discover: str | None = None):
        self.kind = kind
        self._items: dict[str, T] = {}
        self._package = discover  # imported on first look-up: its modules register themselves

    def _discovered(self) -> dict[str, T]:
        if self._package is not None:
            package, self._package = self._package, None
            module = importlib.import_module(package)
            if not self._items:  # e.g. a folder of the same name earlier on sys.path shadows ours
                raise BenchError(f"no {self.kind} registered: package {package!r} from {module.__file__} defines none")
        return self._items

    def register(self, name: str) -> Callable[[T], T]:
        def decorator(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} registered twice")
            self._items[name] = obj
            return obj

        return decorator

    def register_class(self, name: str) -> Callable[[T], T]:
        """Register a class under `name` and set its `name` attribute to match."""

        def decorator(cls: T) -> T:
            cls.name = name  # type: ignore[attr-defined]
            return self.register(name)(cls)

        return decorator

    def get(self, name: str) -> T:
        if name not in self._discovered():
            close = difflib.get_close_matches(name, self._items, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise BenchError(f"unknown {self.kind} {name!r}{hint} (valid: {', '.join(sorted(self._items))})")
        return self._items[name]

    def names(self) -> list[str]:
        return sorted(self._discovered())

    def __contains__(self, name: object) -> bool:
        return name in self._discovered()

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


# The extension points: one file per method in baselines/, per partitioner in partitions/.
METHODS: Registry = Registry("method", discover="baselines")
PARTITIONERS: Registry = Registry("partition", discover="partitions")
