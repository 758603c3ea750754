"""Launch the Flower side of `make compare-flower` (bench/compare/flower_task.py) in Flower's own
environment, with Flower's default client resources or the CPUs per client the workload names:

    .venv-flower/bin/python bench/compare/flower_app.py WORK.json RESULT.json

The apps are imported from flower_apps (its task from flower_task), modules on the path of this process and (through
PYTHONPATH) of Ray's actors, so they travel by reference as under `flwr run`.
"""

import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

if __name__ == "__main__":
    sys.path.insert(0, HERE)
    os.environ["PYTHONPATH"] = os.pathsep.join([HERE, *filter(None, [os.environ.get("PYTHONPATH")])])
    os.environ["BENCH_FLOWER_WORK"] = os.path.abspath(sys.argv[1])  # each process reads the workload itself

    import flower_apps
    import torch
    from flwr.simulation import run_simulation

    work = flower_apps.work()
    torch.manual_seed(work["seed"])
    resources = {"client_resources": {"num_cpus": work["num_cpus"]}} if work.get("num_cpus") else None
    run_simulation(  # Flower's default resources unless the comparison asks for equal ones
        server_app=flower_apps.server,
        client_app=flower_apps.client,
        num_supernodes=len(work["clients"]),
        backend_config=resources,
    )
    with open(sys.argv[2], "w") as f:
        json.dump(flower_apps.RESULT, f)
