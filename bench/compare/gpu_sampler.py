"""nvidia-smi sampled in the background while a GPU job runs (bench.compare.gpu_check)."""

from __future__ import annotations

import subprocess
import threading


class GpuSampler:
    """nvidia-smi in the background: utilisation and memory of the GPU, and the processes on it."""

    QUERY = ["nvidia-smi", "--query-gpu=utilization.gpu,memory.used", "--format=csv,noheader,nounits"]
    APPS = ["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"]

    def __init__(self, every_s: float = 0.5):
        self.every_s, self.samples, self._stop = every_s, [], threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                util, used = subprocess.run(self.QUERY, capture_output=True, text=True, timeout=5).stdout.split(",")[:2]
                apps = subprocess.run(self.APPS, capture_output=True, text=True, timeout=5).stdout.strip().splitlines()
                self.samples.append(
                    {"util": float(util), "used_mib": float(used), "apps": [a.split(",")[0].strip() for a in apps if a]}
                )
            except (OSError, ValueError, subprocess.TimeoutExpired):
                pass
            self._stop.wait(self.every_s)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=10)

    def summary(self) -> dict:
        busy = [s for s in self.samples if s["apps"]]
        return {
            "samples": len(self.samples),
            "util_mean_while_busy": round(sum(s["util"] for s in busy) / len(busy), 1) if busy else None,
            "util_max": max((s["util"] for s in self.samples), default=None),
            "memory_used_peak_mib": max((s["used_mib"] for s in self.samples), default=None),
            "processes_at_once_max": max((len(s["apps"]) for s in self.samples), default=0),
        }
