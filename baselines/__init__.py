"""FL methods, one file each, registered by name. Every module in this folder is imported (and so
registered) here: adding a method is adding a file."""

import importlib
import pkgutil

from baselines.base import GLOBAL, METHODS, Job, Method, Result

for _module in pkgutil.iter_modules(__path__):
    if _module.name != "base":
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["METHODS", "Method", "Job", "Result", "GLOBAL"]
