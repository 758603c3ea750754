"""The task registry: each loader module registers one TaskSpec under its contract name."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.data.types import TaskData, TaskKind
from bench.errors import BenchError
from bench.registry import Registry


@dataclass(frozen=True)
class TaskSpec:
    """How to load a task: its kind, its loader, and where its data is when no --data-dir is given:
    a corpus shipped with the project (`bundled`), else the synthetic sub-folder, else nowhere."""

    name: str
    kind: TaskKind
    load: Callable[..., TaskData]
    synth_subdir: str | None  # None: no synthetic corpus
    bundled: Path | None = None
    split_rule: str = ""  # how the release's files become train / validation / test, for error messages


class TaskRegistry(Registry[TaskSpec]):
    """Tasks by name, and task families by prefix (`hf:SOURCE`): a family makes the spec of a name
    on its first look-up."""

    def __init__(self):
        super().__init__("task")
        self.families: dict[str, Callable[[str], TaskSpec]] = {}
        self._made: dict[str, TaskSpec] = {}

    def family(self, prefix: str) -> Callable:
        def decorator(factory: Callable[[str], TaskSpec]) -> Callable[[str], TaskSpec]:
            self.families[prefix] = factory
            return factory

        return decorator

    def _family_of(self, name: object) -> str | None:
        if not isinstance(name, str):
            return None
        return next((p for p in self.families if name.startswith(p) and len(name) > len(p)), None)

    def get(self, name: str) -> TaskSpec:
        prefix = self._family_of(name)
        if prefix is None:
            try:
                return super().get(name)
            except BenchError as e:
                raise BenchError(f"{e}, or {' / '.join(p + 'SOURCE' for p in self.families)}") from None
        if name not in self._made:
            self._made[name] = self.families[prefix](name[len(prefix) :])
        return self._made[name]

    def __contains__(self, name: object) -> bool:
        return self._family_of(name) is not None or super().__contains__(name)


TASKS = TaskRegistry()


def register_task(
    name: str,
    kind: TaskKind,
    synth_subdir: str | None,
    bundled: Path | None = None,
    split_rule: str = "",
):
    def decorator(load: Callable[..., TaskData]) -> Callable[..., TaskData]:
        TASKS.register(name)(TaskSpec(name, kind, load, synth_subdir, bundled, split_rule))
        return load

    return decorator


def release_folder(spec: TaskSpec) -> str:
    """The task's folder under a data root holding several releases (run_all.py --data-dir ROOT)."""
    return spec.synth_subdir or spec.name


def resolve_data_dir(spec: TaskSpec, data_dir: str | Path | None) -> Path:
    """The folder to read: the user's, or the shipped corpus. (The synthetic corpus, for tasks
    that have one, is chosen above this layer: bench.synth.cache.data_dir_for.)"""
    if data_dir is not None:
        path = Path(data_dir)
        if not path.is_dir():
            raise BenchError(f"--data-dir {path}: no such folder")
        return path
    if spec.bundled is not None:
        return spec.bundled
    raise BenchError(f"task {spec.name!r} ships no corpus: give --data-dir")
