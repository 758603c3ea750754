"""Any two configurations against each other (bench.report.contrast): seeds paired, a t-interval
over them checked against scipy, centralized read under every partition, the tuning seed left out."""

import csv
import json

import numpy as np
import pytest
from scipy import stats as scipy_stats

from bench.report import contrast


def _store(folder, runs):
    with open(folder / "summary.csv", "w", newline="") as f:
        w = csv.DictWriter(f, ["run_id", "role", "status"])
        w.writeheader()
        for i, (method, layers, partition, seed, metric, role) in enumerate(runs):
            run_id = f"r{i}"
            w.writerow({"run_id": run_id, "role": role, "status": "ok"})
            config = {"method": method, "layers": layers, "partition": partition, "seed": seed, "clients": 4}
            (folder / "runs" / run_id).mkdir(parents=True)
            (folder / "runs" / run_id / "final.json").write_text(json.dumps({"config": config, "metric": metric}))


A = {1: 0.70, 2: 0.66, 3: 0.69}
B = {1: 0.64, 2: 0.65, 3: 0.61}
CENTRAL = {1: 0.75, 2: 0.74, 3: 0.76}


def _study(tmp_path):
    runs = [("lora", "", p, s, A[s] - (p != "iid") * 0.01, "reported") for p in ("iid", "dirichlet:0.5") for s in A]
    runs += [("layerskip", "top:2", p, s, B[s], "reported") for p in ("iid", "dirichlet:0.5") for s in B]
    runs += [("centralized", "", "iid", s, CENTRAL[s], "reported") for s in CENTRAL]
    runs += [("lora", "", "iid", 0, 0.99, "tuning"), ("layerskip", "top:2", "iid", 0, 0.10, "tuning")]
    _store(tmp_path, runs)
    return contrast.reported_runs(tmp_path)


def test_the_interval_is_a_t_interval_over_the_per_seed_differences(tmp_path):
    rows = {r["partition"]: r for r in contrast.contrasts(_study(tmp_path), "lora r8", "layerskip top:2")}
    d = np.array([A[s] - B[s] for s in (1, 2, 3)])  # the tuning seed (0) is not among them
    half = scipy_stats.t.ppf(0.975, 2) * d.std(ddof=1) / np.sqrt(3)
    found = rows["iid"]["interval"]
    assert rows["iid"]["seeds"] == [1, 2, 3]
    assert found["diff"] == pytest.approx(d.mean()) and found["lo"] == pytest.approx(d.mean() - half)
    assert found["hi"] == pytest.approx(d.mean() + half)
    assert rows["dirichlet:0.5"]["interval"]["diff"] == pytest.approx(d.mean() - 0.01)


def test_centralized_pairs_with_every_partition_and_an_unknown_name_is_one_line(tmp_path, capsys):
    rows = contrast.contrasts(_study(tmp_path), "layerskip top:2", "centralized")
    assert [r["partition"] for r in rows] == ["dirichlet:0.5", "iid"]
    assert rows[0]["interval"]["diff"] == pytest.approx(np.mean([B[s] - CENTRAL[s] for s in B]))
    assert contrast.main([str(tmp_path), "layerskip top:2", "centralized"]) == 0
    assert "layerskip top:2 - centralized, points (iid; seeds 1, 2, 3): -11.7 [" in capsys.readouterr().out
    assert contrast.main([str(tmp_path), "lora r8", "fedavg"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "'fedavg'" in err and "layerskip top:2, lora r8" in err


def test_a_seed_one_side_lacks_is_named_and_a_label_naming_two_runs_of_a_seed_is_refused(tmp_path, capsys):
    runs = [("lora", "", "iid", s, A[s], "reported") for s in A]
    runs += [("layerskip", "top:2", "iid", s, B[s], "reported") for s in (1, 2)]
    _store(tmp_path, runs + [("lora", "", "iid", 1, 0.5, "reported")])  # a second lora r8 run of seed 1
    assert contrast.main([str(tmp_path), "lora r8", "layerskip top:2"]) == 2
    assert "'lora r8' names more than one run of seed 1" in capsys.readouterr().err
    other = tmp_path / "other"
    other.mkdir()
    _store(other, runs)
    assert contrast.main([str(other), "lora r8", "layerskip top:2"]) == 0
    assert "(iid; seeds 1, 2; seeds 3 on one side only, left out): " in capsys.readouterr().out


def test_dp_runs_failed_runs_and_auto_blocks_are_read_as_the_table_reads_them(tmp_path, capsys):
    runs = [("lora", "", "iid", s, A[s], "reported") for s in A]
    runs += [("layerskip", "auto:2", "iid", s, B[s], "reported") for s in B]
    _store(tmp_path, runs)
    for s in (1, 2):  # auto:2 names the blocks its probe chose: the table's label is "layerskip auto:2 [4 5]"
        final = tmp_path / "runs" / f"r{2 + s}" / "final.json"
        final.write_text(json.dumps({**json.loads(final.read_text()), "method_info": {"blocks": [4, 5]}}))
    dp = tmp_path / "runs" / "r0" / "final.json"  # lora seed 1 under DP: not the plain configuration
    dp.write_text(
        json.dumps({**json.loads(dp.read_text()), "config": {**json.loads(dp.read_text())["config"], "dp_epsilon": 8}})
    )
    with open(tmp_path / "summary.csv", "a", newline="") as f:
        f.write("r9,reported,failed\n")  # a failed run: no final.json, and not read
    assert contrast.main([str(tmp_path), "lora r8", "layerskip auto:2"]) == 0
    out = capsys.readouterr().out
    assert "(iid; seeds 2, 3; seeds 1 on one side only, left out): " in out  # seed 1 of lora ran under DP
    d = (A[2] - B[2] + A[3] - B[3]) / 2
    assert f"{100 * d:+.1f} [" in out and "(2 seeds: no verdict)" in out  # two seeds: shown, not judged


def test_n_s_where_the_interval_holds_zero_and_no_shared_partition_is_one_line(tmp_path, capsys):
    near = {1: 0.64, 2: 0.67, 3: 0.62}  # lora - top:2 per seed: -1, +2, +1 points: the interval holds 0
    runs = [("lora", "", "iid", s, near[s] - 0.01 * (s == 1), "reported") for s in near]
    runs += [("layerskip", "top:2", "iid", s, B[s], "reported") for s in B]
    runs += [("fedavg", "", "dirichlet:0.5", s, B[s], "reported") for s in B]
    _store(tmp_path, runs)
    assert contrast.main([str(tmp_path), "lora r8", "layerskip top:2"]) == 0
    assert capsys.readouterr().out.splitlines()[0].endswith("] n.s.")
    assert contrast.main([str(tmp_path), "fedavg", "layerskip top:2"]) == 2
    assert capsys.readouterr().err.strip().endswith("share no partition and seed in " + str(tmp_path))


@pytest.mark.parametrize(
    ("damage", "said"),
    [
        (
            lambda d: (d / "runs" / "r0" / "final.json").write_text("{not json"),
            "final.json: not a finished run's record",
        ),
        (lambda d: (d / "runs" / "r0" / "final.json").write_text('{"metric": 0.5}'), "not a finished run's record"),
        (
            lambda d: (d / "runs" / "r0" / "final.json").write_text(
                '{"config": {"method": "lora", "seed": 1, "partition": "iid"}, "metric": null}'
            ),
            "not a finished run's record",
        ),
        (
            lambda d: (d / "runs" / "r0" / "final.json").unlink(),
            "final.json: missing (summary.csv lists run r0 as reported)",
        ),
        (
            lambda d: (d / "summary.csv").write_text("run,role,status\nr0,reported,ok\n"),
            "summary.csv: no column run_id",
        ),
        (lambda d: (d / "summary.csv").write_text("run_id,role,status\n"), "summary.csv: no runs"),
    ],
)
def test_a_damaged_report_folder_is_one_line_naming_the_file(tmp_path, capsys, damage, said):
    _store(tmp_path, [("lora", "", "iid", s, A[s], "reported") for s in A])
    damage(tmp_path)
    assert contrast.main([str(tmp_path), "lora r8", "lora r8"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and said in err and "Traceback" not in err
    assert contrast.main([str(tmp_path / "nowhere"), "a", "b"]) == 2
    assert "nowhere: no such folder" in capsys.readouterr().err


def test_partition_reads_one_partition_where_a_label_names_two_runs_of_a_seed_on_another(tmp_path, capsys):
    runs = [("lora", "", p, s, A[s], "reported") for p in ("iid", "dirichlet:0.5") for s in A]
    runs += [("layerskip", "top:2", p, s, B[s], "reported") for p in ("iid", "dirichlet:0.5") for s in B]
    runs += [("centralized", "", "iid", s, CENTRAL[s], "reported") for s in CENTRAL]
    _store(tmp_path, runs + [("lora", "", "iid", 1, 0.5, "reported")])  # a second lora r8 run of seed 1, iid only
    assert contrast.main([str(tmp_path), "lora r8", "layerskip top:2"]) == 2
    assert "'lora r8' names more than one run of seed 1 (iid)" in capsys.readouterr().err
    assert contrast.main([str(tmp_path), "lora r8", "layerskip top:2", "--partition", "dirichlet:0.5"]) == 0
    out = capsys.readouterr().out
    assert "lora r8 - layerskip top:2, points (dirichlet:0.5; seeds 1, 2, 3): +5.0 [" in out and "(iid;" not in out
    rows = contrast.contrasts(contrast.reported_runs(tmp_path), "centralized", "layerskip top:2", "dirichlet:0.5")
    assert [r["partition"] for r in rows] == ["dirichlet:0.5"]  # centralized stands for every partition
    assert contrast.main([str(tmp_path), "lora r8", "layerskip top:2", "--partition", "dirichlet:0.1"]) == 2
    assert "no reported runs of 'lora r8' on partition dirichlet:0.1" in capsys.readouterr().err
