"""The Flower side's ClientApp and ServerApp (Flower's client_app.py and server_app.py) around
its task (flower_task.py): see there for what they run and how it is aligned with the suite.
A module of its own, in Flower's environment only, so that the apps travel to Ray's actors by
reference, as `flwr run` loads an app.
"""

from __future__ import annotations

import time

import torch
from flower_task import get_model, initial_model, load_data, test_fn, train_fn, trained_state, work
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MessageType, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg

# --- ClientApp (Flower's client_app.py) ---

client = ClientApp()


@client.train()
def train(msg: Message, context: Context) -> Message:
    partition_id = context.node_config["partition-id"]
    round_ = msg.content["config"]["server-round"] - 1  # the suite counts rounds from 0
    seed = work()["client_seeds"][partition_id][round_]
    rows = load_data(work()["clients"][partition_id])
    model = get_model()
    model.load_state_dict(msg.content["arrays"].to_torch_state_dict(), strict=False)  # the arrays that travel
    train_fn(model, rows, epochs=work().get("local_epochs", 1), lr=work()["lr"], seed=seed)
    content = RecordDict(
        {
            "arrays": ArrayRecord(trained_state(model)),
            "metrics": MetricRecord(  # FedAvg weighs by sentences; the partition shows who trained
                {
                    "num-examples": work()["client_sizes"][partition_id],
                    "partition-id": partition_id,
                    "torch-threads": torch.get_num_threads(),  # what the actor trained with (Ray's OMP_NUM_THREADS)
                }
            ),
        }
    )
    return Message(content=content, reply_to=msg)


@client.query()
def query(msg: Message, context: Context) -> Message:
    """Which partition this node holds (the server asks once, to train the suite's clients)."""
    reply = MetricRecord({"partition-id": context.node_config["partition-id"]})
    return Message(content=RecordDict({"partition": reply}), reply_to=msg)


# --- ServerApp (Flower's server_app.py) ---

server = ServerApp()
RESULT: dict = {"val_f1": [], "trained": [], "client_threads": []}
BEST: dict = {}  # the best validation round's arrays after round 0: the state the suite reports


def global_evaluate(server_round: int, arrays: ArrayRecord) -> MetricRecord:
    """Centralized evaluation on the validation sentences, every round (Flower's evaluate_fn)."""
    model = get_model()
    model.load_state_dict(arrays.to_torch_state_dict(), strict=False)
    f1 = test_fn(model, "validation")
    RESULT["val_f1"].append({"round": server_round, "f1": f1})
    if server_round > 0 and f1 > BEST.get("f1", -1.0):
        BEST.update(f1=f1, arrays=arrays, round=server_round)
    return MetricRecord({"f1": f1})


class SuiteClientsFedAvg(FedAvg):
    """FedAvg training, each round, the clients the suite trains in that round, and averaging
    their replies in client order, as the suite sums them. Where every client trains every round
    (A, C) FedAvg's own sampling already picks them; where the suite samples (B: 10 of 50), the
    nodes holding them are found once, at round 1, by a query message."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.node_of: dict[int, int] = {}  # partition id -> node id, once asked

    def configure_train(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid):
        if self.fraction_train == 1.0:
            return super().configure_train(server_round, arrays, config, grid)
        self.node_of = self.node_of or nodes_by_partition(grid, len(work()["clients"]))
        config["server-round"] = server_round
        record = RecordDict({self.arrayrecord_key: arrays, self.configrecord_key: config})
        return [
            Message(content=record, dst_node_id=self.node_of[c], message_type=MessageType.TRAIN)
            for c in work()["round_clients"][server_round - 1]
        ]

    def aggregate_train(self, server_round: int, replies):
        replies = sorted((r for r in replies if r.has_content()), key=_partition)
        RESULT["trained"].append([_partition(r) for r in replies])  # checked against the suite's clients
        RESULT["client_threads"].append([int(r.content["metrics"]["torch-threads"]) for r in replies])
        return super().aggregate_train(server_round, replies)


def _partition(reply: Message) -> int:
    return int(reply.content["metrics"]["partition-id"])


def nodes_by_partition(grid: Grid, clients: int) -> dict[int, int]:
    while len(nodes := list(grid.get_node_ids())) < clients:  # as FedAvg's sampling waits for them
        time.sleep(0.1)
    asks = [Message(RecordDict(), dst_node_id=n, message_type=MessageType.QUERY) for n in nodes]
    return {int(r.content["partition"]["partition-id"]): r.metadata.src_node_id for r in grid.send_and_receive(asks)}


@server.main()
def main(grid: Grid, context: Context) -> None:
    RESULT["driver_threads"] = torch.get_num_threads()  # the driver scores validation and test
    model = initial_model()
    clients, per_round = len(work()["clients"]), work()["per_round"]
    strategy = SuiteClientsFedAvg(
        fraction_train=per_round / clients,
        fraction_evaluate=0.0,
        min_train_nodes=per_round,
        min_available_nodes=clients,
    )
    result = strategy.start(
        grid=grid,
        initial_arrays=ArrayRecord(trained_state(model)),
        num_rounds=work()["rounds"],
        evaluate_fn=global_evaluate,
    )
    model.load_state_dict(BEST["arrays"].to_torch_state_dict(), strict=False)
    RESULT["test_f1"] = test_fn(model, "test")
    RESULT["per_client"] = [test_fn(model, f"holdout-{c}", part) for c, part in enumerate(work()["holdouts"])]
    RESULT["test_f1_last"] = RESULT["test_f1"]
    if BEST["round"] != work()["rounds"]:  # the suite also scores the last state where it differs
        model.load_state_dict(result.arrays.to_torch_state_dict(), strict=False)
        RESULT["test_f1_last"] = test_fn(model, "test")
