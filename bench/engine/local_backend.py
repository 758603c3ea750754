"""The local backend: a pool of worker processes on this machine, the CPU default.

Each process builds the model once (one torch thread each: two one-thread processes keep two
cores busier than one two-thread process on batches this small) and runs any number of clients
on it, like a Ray actor, without Ray's own processes and object store. Each state a call needs
is written once to shared memory that every process maps; clients are dealt dynamically, a free
process taking the next one (preferably one it ran before: its prefix-cache rows are there),
and results are sorted by client id, so the numbers match the serial backend. A large
evaluation is cut across all processes and scored here from the merged predictions. A process
that dies takes only its in-flight client with it (reported lost, as on Ray); it is restarted
up to `max_retries` times.
"""

from __future__ import annotations

import io
import os
import traceback
from multiprocessing.connection import Connection, wait

import torch

from bench.config import ExperimentConfig
from bench.engine import fork_server, heap, shared_state
from bench.engine.prepare import PreparedTask
from bench.engine.scoring import CutEvaluation
from bench.engine.worker import Worker, by_owner, kept


def pack(obj) -> memoryview:
    """`obj` serialised (tensors included), as a view of the buffer: no second copy."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getbuffer()


def unpack(blob) -> object:
    return torch.load(io.BytesIO(blob), weights_only=False)  # our own pipe, our own objects


def _serve(conn: Connection) -> None:
    """A worker process: build the Worker, then answer calls until told to stop. A call is one
    message (name, args, how many states follow) and then each state it needs, as its own
    message, unpacked once however many clients use it."""

    cfg, task, dp, environ = unpack(conn.recv_bytes())
    os.environ.clear()
    os.environ.update(environ)  # the server's environment now, not the fork server's from its start
    worker = Worker(cfg, task, dp)
    conn.send_bytes(pack(("ok", None)))
    while True:
        name, args, n_states = unpack(conn.recv_bytes())
        if name == "stop":
            worker.close()
            conn.send_bytes(pack(("ok", None)))
            return
        states = [shared_state.attach(unpack(conn.recv_bytes())) for _ in range(n_states)]
        try:
            reply = ("ok", getattr(_Calls, name)(worker, states, *args))
        except Exception:  # the server raises it with the worker's traceback
            reply = ("error", traceback.format_exc())
        del states
        conn.send_bytes(pack(reply))
        del reply
        heap.trim()


class _Calls:
    """What a worker process is asked to do."""

    @staticmethod
    def info(worker, states):
        return worker.info()

    @staticmethod
    def cache_report(worker, states):
        return worker.cache_report()

    @staticmethod
    def initial_state(worker, states):
        return worker.initial_state()

    @staticmethod
    def train(worker, states, jobs, round_, residuals, secure):  # each update back through shared memory
        return [shared_state.sent_back(res) for res in worker.train(states[0], jobs, round_, residuals, secure)]

    @staticmethod
    def secagg(worker, states, step, round_, per_client):
        return worker.secagg(step, round_, per_client)

    @staticmethod
    def predict(worker, states, requests: list):
        return worker.predict_batch(requests, *states)


class WorkerDied(RuntimeError):
    pass


class LocalBackend:
    def __init__(self, cfg: ExperimentConfig, task: PreparedTask, dp=None):
        fork_server.warm_up()  # started here unless the server did (a no-op then)
        self.context = fork_server.context()
        shared_state.sweep()  # files a killed server left behind
        self.setup = pack((cfg.to_dict(), task, dp, dict(os.environ)))
        self.restarts_left = cfg.max_retries
        self.task = task  # to score the merged predictions
        self.affinity: dict[int, int] = {}  # client -> the process that last trained it
        self.procs: list = [None] * cfg.workers
        self.conns: list[Connection | None] = [None] * cfg.workers
        for i in range(cfg.workers):
            self._start(i, wait_ready=False)
        for i in range(cfg.workers):
            self._receive(i)  # built: every process constructs its model at the same time

    def _start(self, i: int, wait_ready: bool = True) -> None:
        parent, child = self.context.Pipe()
        proc = self.context.Process(target=_serve, args=(child,), daemon=True, name=f"bench-worker-{i}")
        proc.start()
        child.close()
        parent.send_bytes(self.setup)
        self.procs[i], self.conns[i] = proc, parent
        if wait_ready:
            self._receive(i)

    def _receive(self, i: int):
        try:
            status, value = unpack(self.conns[i].recv_bytes())
        except (EOFError, ConnectionError, OSError) as e:
            raise WorkerDied(f"worker process {i} died (exit code {self.procs[i].exitcode})") from e
        if status == "error":
            raise RuntimeError(f"worker process {i} failed:\n{value}")
        return value

    def _send(self, i: int, name: str, args: tuple, states: list = ()) -> None:
        self.conns[i].send_bytes(pack((name, args, len(states))))
        for blob in states:
            self.conns[i].send_bytes(blob)

    def _call(self, i: int, name: str, *args):
        self._send(i, name, args)
        return self._receive(i)

    def info(self) -> dict:
        return self._call(0, "info")

    def initial_state(self):
        return self._call(0, "initial_state")

    def owner(self, client: int) -> int:
        """The process that holds a client's secure-aggregation secrets (and so trains it)."""
        return client % len(self.conns)  # as by_owner groups it

    def secagg(self, step: str, round_: int, per_client: dict) -> dict:
        """A secure-aggregation step, each client's part sent to the process that holds its secrets."""
        parts = by_owner(per_client, len(self.conns))
        for i, part in parts.items():
            self._send(i, "secagg", (step, round_, part))
        replies = {}
        for i in parts:
            try:
                replies.update(self._receive(i))
            except WorkerDied:  # its clients' secrets died with it: they answer nothing
                self._restart(i)
        return replies

    def _next(self, pending: list, idle: list, secure) -> tuple[int, object] | None:
        """The next (process, job): under secure aggregation the process holding the client's
        secrets; otherwise a free one, preferably one that ran the client before."""
        if secure is not None:
            n = next((n for n, j in enumerate(pending) if self.owner(j.client) in idle), None)
            if n is None:
                return None
            job = pending.pop(n)
            idle.remove(self.owner(job.client))
            return self.owner(job.client), job
        i = idle.pop(0)
        job = pending.pop(next((n for n, j in enumerate(pending) if self.affinity.get(j.client) == i), 0))
        return i, job

    def train(
        self, states: dict, jobs: list, round_: int, residuals: dict | None = None, secure=None, receive=kept
    ) -> tuple[list, set[int]]:
        """(results sorted by client, clients lost with a process that died); each result goes
        to `receive` as it arrives (it returns what to keep)."""
        with shared_state.SharedStates({start: states[start] for start in {job.start for job in jobs}}) as shared:
            blobs = {start: pack({start: shared[start]}) for start in shared.states}  # each written once
            results, lost = self._deal(blobs, list(jobs), residuals, secure, receive, round_)
        return sorted(results, key=lambda r: r.client), lost

    def _deal(self, blobs, pending, residuals, secure, receive, round_) -> tuple[list, set[int]]:
        """Clients to free processes until every one has answered (or died)."""
        idle, running = list(range(len(self.conns))), {}
        results, lost = [], set()
        while pending or running:
            while pending and idle and (picked := self._next(pending, idle, secure)):
                i, job = picked
                self.affinity[job.client] = i  # its prefix-cache rows are in that process
                kept = {job.client: residuals[job.client]} if residuals and job.client in residuals else None
                self._send(i, "train", ([job], round_, kept, secure), [blobs[job.start]])
                running[self.conns[i]] = (i, job)
            for conn in wait(list(running)):
                i, job = running.pop(conn)
                try:
                    results += [receive(shared_state.taken_back(res)) for res in self._receive(i)]
                except WorkerDied:
                    lost.add(job.client)
                    self._restart(i)
                idle.append(i)
        return results, lost

    def _restart(self, i: int) -> None:
        if self.restarts_left <= 0:
            raise WorkerDied(f"worker process {i} died and no restarts are left (max_retries)")
        self.restarts_left -= 1
        shared_state.remove_files_of(self.procs[i].pid)  # an update it wrote that never arrived
        self._start(i)

    def evaluate_many(self, requests: list[tuple[dict, str, list | None]]) -> list[dict]:
        """Every process predicts a share of the rows (a large request is cut across all of them,
        so one validation pass uses every core), and the scores are computed here from the
        merged predictions. Each distinct state is packed once."""
        shared = shared_state.SharedStates({id(state): state for state, _, _ in requests})
        with shared:
            blobs = {key: pack(shared[key]) for key in shared.states}
            cut = CutEvaluation(self.task, requests, len(self.conns))
            for i, call in enumerate(cut.calls):
                if call:
                    self._send(i, "predict", (call[1],), [blobs[k] for k in call[0]])
            return cut.scores([self._receive(i) if call else [] for i, call in enumerate(cut.calls)])

    def cache_reports(self) -> list:
        return [self._call(i, "cache_report") for i in range(len(self.conns))]

    def close(self) -> None:
        for i in range(len(self.conns)):
            try:
                self._call(i, "stop")  # the worker saves its prefix cache first
            except (OSError, WorkerDied, RuntimeError):
                pass
        for proc in self.procs:
            if proc is not None:
                proc.join(timeout=30)
                if proc.is_alive():
                    proc.terminate()
                    proc.join(timeout=5)
                shared_state.remove_files_of(proc.pid)  # updates in flight when the run stopped
        self.procs, self.conns = [], []
