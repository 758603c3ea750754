"""No patient text leaves: plant canary words in the notes, run everything (secure aggregation, DP
and the auto:K probe included), search every output for the words, and for their token ids (as
the tokenizer encodes them: raw int32/int64 arrays and JSON or space-separated lists), which the
runs' own token cache (kept apart, in the test's folder) must hold, the search's positive control."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CANARIES = ["ZQXCANARYALPHA", "WVKCANARYBRAVO"]


def plant(corpus: Path, tmp: Path) -> Path:
    """A copy of the i2b2-2010 corpus with a canary line in every note, one inside a concept."""
    data = tmp / "i2b2-2010"
    shutil.copytree(corpus / "i2b2-2010", data)
    for txt in data.rglob("*.txt"):
        lines = txt.read_text().splitlines()
        lines.append(f"Patient {CANARIES[0]} reports {CANARIES[1]} pain .")
        txt.write_text("\n".join(lines) + "\n")
        con = (
            (txt.parent.parent / "concept" / f"{txt.stem}.con")
            if txt.parent.name == "txt"
            else data / "reference_standard_for_test_data" / "concepts" / f"{txt.stem}.con"
        )
        with open(con, "a") as f:
            f.write(f'c="{CANARIES[1].lower()} pain" {len(lines)}:3 {len(lines)}:4||t="problem"\n')
    return data


def token_ids(word: str) -> list[int]:
    from bench.model.build import source_for

    ids = source_for("tiny-bert").tokenizer()(word, add_special_tokens=False)["input_ids"]
    assert len(ids) >= 4  # long enough not to turn up by chance
    return ids


def token_id_forms(ids: list[int]) -> list[bytes]:
    """The ways a stored token-id sequence could look in a file."""
    text = [sep.join(map(str, ids)).encode() for sep in (", ", ",", " ")]
    return [np.array(ids, dtype).tobytes() for dtype in (np.int32, np.int64)] + text


def found_in(files: list[Path], forms: list[bytes]) -> list[Path]:
    return [p for p in files if any(form in p.read_bytes() for form in forms)]


def test_canaries_never_reach_outputs_or_logs(tiny_corpus, tmp_path):
    data = plant(tiny_corpus, tmp_path)
    out, side = tmp_path / "out", tmp_path / "side"  # the grid's folder; the other commands' outputs
    grid = tmp_path / "g.yaml"
    grid.write_text(f"""name: canary
defaults: {{model: tiny-bert, clients: 2, rounds: 1, max_length: 48, data_dir: "{data}"}}
tasks: [i2b2-2010]
methods:
  - {{method: fedavg}}
  - {{method: layerskip, layers: "top:1"}}
  - {{method: layerskip, layers: "auto:1"}}
  - {{method: fedavg, noise_multiplier: 1.0}}
partitions: [iid]
""")
    commands = [
        [sys.executable, str(ROOT / "run_all.py"), "--grid", str(grid), "--out", str(out)],
        [sys.executable, "-m", "bench.data", "stats", "--task", "i2b2-2010", "--data-dir", str(data), "--json"],
        [
            sys.executable,
            "-m",
            "partitions",
            "show",
            "--task",
            "i2b2-2010",
            "--data-dir",
            str(data),
            "--partition",
            "dirichlet:0.5",
            "--clients",
            "3",
            "--json",
            "--plot",
            str(side / "partition.png"),
        ],
        [
            sys.executable,
            "-m",
            "bench.run",
            "--task",
            "i2b2-2010",
            "--method",
            "fedavg",
            "--model",
            "tiny-bert",
            "--clients",
            "2",
            "--rounds",
            "1",
            "--data-dir",
            str(data),
            "--out",
            str(side / "single"),
            "--secagg",
            "on",
            "--secagg-transcript",
            str(side / "single" / "secagg.jsonl"),
        ],
    ]
    cache = tmp_path / "cache"  # the runs' token cache: the hospital's own disk, where token ids may be
    logs_dir = tmp_path / "logs"
    logs_dir.mkdir()
    side.mkdir()
    procs = []
    for i, cmd in enumerate(commands):  # all at once: each mostly keeps one core busy
        with open(logs_dir / f"{i}.out", "w") as stdout, open(logs_dir / f"{i}.err", "w") as stderr:
            env = {**os.environ, "BENCH_CACHE": str(cache)}
            procs.append(subprocess.Popen(cmd, stdout=stdout, stderr=stderr, cwd=ROOT, env=env))
    logs = []
    for i, proc in enumerate(procs):
        proc.wait(timeout=600)
        err = (logs_dir / f"{i}.err").read_text()
        assert proc.returncode == 0, err[-2000:]
        logs.append((logs_dir / f"{i}.out").read_text() + err)
    # the canaries are really in the data the runs read
    from bench.data import load_task

    assert any(CANARIES[0] in ex.tokens for ex in load_task("i2b2-2010", data).train)
    files = [p for folder in (out, side) for p in folder.rglob("*") if p.is_file()]
    assert any(p.suffix == ".png" for p in files) and any(p.name == "final.json" for p in files)
    # the secure, DP and auto:K runs ran and left their outputs to search
    assert (side / "single" / "secagg.jsonl").stat().st_size > 0
    assert len([p for p in files if p.name == "final.json"]) >= 5
    for canary in CANARIES:
        for variant in (canary, canary.lower()):
            assert not any(variant in log for log in logs)
            hits = [p for p in files if variant.encode() in p.read_bytes()]
            assert not hits, f"{variant} found in {hits}"
        forms = token_id_forms(token_ids(canary))
        assert not any(form in log.encode() for log in logs for form in forms)
        assert not found_in(files, forms), f"{canary}'s token ids found in {found_in(files, forms)}"
    # the search's positive control: the token cache the runs wrote does hold the canaries' ids
    cached = [p for p in cache.rglob("*") if p.is_file()]
    for canary in CANARIES:
        assert found_in(cached, token_id_forms(token_ids(canary))), f"{canary}'s ids not found in the token cache"
