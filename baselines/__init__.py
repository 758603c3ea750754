"""FL methods, one file each, registered by name. Importing this package registers them all."""

from baselines import centralized, fedavg, fedprox, layerskip, local, lora  # noqa: F401
from baselines.base import GLOBAL, METHODS, Job, Method, Result

__all__ = ["METHODS", "Method", "Job", "Result", "GLOBAL"]
