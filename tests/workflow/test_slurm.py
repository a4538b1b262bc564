"""The tiny study through a real Slurm cluster with profiles/slurm and the real executor plugin.

Needs a running cluster (CI starts one with .ci/slurm-up.sh: partitions `cpu` and `gpu`, two
stand-in GPUs). Skipped with the reason when `sinfo` finds none, unless MWORK_REQUIRE_SLURM=1
(set by .ci/run after starting the cluster), where it fails instead.

The run uses a test-only layer derived mechanically from profiles/slurm/config.yaml: only the
site values a user edits (partitions missing here fall back to the default partition) and the
sizes this node cannot grant (memory, CPUs) change; every rule keeps its GPU request. The
demo world and model are copied from the local reference run, so the Slurm run starts at the
corpus: corpus -> 2 detection shards -> merge -> baseline x2 + masked run -> scores -> tables.
"""

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yte
from wfhelpers import ROOT, TARGET, copy_run, snakemake, tiny_study_config

SUBMITTED = re.compile(
    r"Job (\d+) has been submitted with SLURM jobid (\d+) \(log: (\S+?)\)\.?$", re.M
)


def cluster_or_skip() -> None:
    required = os.environ.get("MWORK_REQUIRE_SLURM") == "1"
    reason = None
    if shutil.which("sinfo") is None:
        reason = "no Slurm client (sinfo) on PATH; start one: `bash .ci/slurm-up.sh` (root, apt)"
    else:
        res = subprocess.run(
            ["sinfo", "-h", "-o", "%P"], capture_output=True, text=True, timeout=30
        )
        if res.returncode != 0 or not res.stdout.strip():
            err = res.stderr.strip()[:200]
            reason = f"no Slurm cluster answers sinfo ({err}); run `bash .ci/slurm-up.sh`"
    if reason:
        if required:
            pytest.fail(f"MWORK_REQUIRE_SLURM=1 but {reason}")
        print(f"SKIP test_slurm: {reason}")
        pytest.skip(reason)


def cluster_facts() -> tuple[set[str], str, int, int]:
    """Partitions, the default partition, and the smallest node's memory (MB) and CPUs."""
    out = subprocess.run(
        ["sinfo", "-h", "-o", "%P %m %c"], capture_output=True, text=True, check=True
    ).stdout.split("\n")
    parts, default, mem, cpus = set(), None, None, None
    for line in filter(None, out):
        name, m, c = line.split()
        if name.endswith("*"):
            name = default = name[:-1]
        parts.add(name)
        mem = min(mem or 10**9, int(m.rstrip("+")))
        cpus = min(cpus or 10**6, int(c.rstrip("+")))
    return parts, default or sorted(parts)[0], mem, cpus


def sacct_works() -> bool:
    return (
        subprocess.run(["sacct", "-n", "-X"], capture_output=True).returncode == 0
        if shutil.which("sacct")
        else False
    )


def slurm_test_layer(dst: Path) -> dict:
    """profiles/slurm adapted to this cluster (site values and node limits only)."""
    with open(ROOT / "profiles" / "slurm" / "config.yaml") as f:
        prof = yte.process_yaml(f, require_use_yte=True)
    parts, default, mem, cpus = cluster_facts()

    def adapt(res: dict) -> dict:
        res = dict(res)
        if res.get("slurm_partition") not in parts:
            res["slurm_partition"] = default
        res["mem_mb"] = min(int(res["mem_mb"]), mem // 4)  # four jobs fit on the node at once
        res["cpus_per_task"] = min(int(res["cpus_per_task"]), max(1, cpus // 2))  # two jobs at once
        res["runtime"] = min(int(res["runtime"]), 30)
        return res

    prof["default-resources"] = adapt(prof["default-resources"])
    prof["set-resources"] = {rule: adapt(res) for rule, res in prof["set-resources"].items()}
    prof.update(
        {
            "jobs": 4,
            "latency-wait": 5,
            "retries": 0,
            "slurm-init-seconds-before-status-checks": 2,
            "slurm-keep-successful-logs": True,
        }
    )
    if not sacct_works():  # no accounting database: the plugin must ask squeue
        prof["slurm-status-command"] = "squeue"
    dst.mkdir()
    (dst / "config.yaml").write_text(json.dumps(prof, indent=1))  # JSON is YAML
    return prof


def scontrol(jobid: str) -> dict[str, str]:
    out = subprocess.run(
        ["scontrol", "show", "job", "-o", jobid], capture_output=True, text=True, check=True
    ).stdout
    return dict(re.findall(r"(\w[\w:/]*)=(\S*)", out))


def normalised_json(path: Path, wd: Path) -> object:
    """A score JSON with the run directory replaced and timing fields dropped."""
    data = json.loads(path.read_text().replace(str(wd), "<wd>"))

    def strip(x):
        if isinstance(x, dict):
            return {
                k: strip(v)
                for k, v in x.items()
                if not re.search(r"time|duration|elapsed|seconds", k)
            }
        return [strip(v) for v in x] if isinstance(x, list) else x

    return strip(data)


@pytest.fixture(scope="session")
def cluster() -> None:
    """Skip (or fail under MWORK_REQUIRE_SLURM=1) before the local reference run is paid for."""
    cluster_or_skip()


@pytest.fixture(scope="module")
def slurm_run(cluster, local_run, tmp_path_factory):
    wd = tmp_path_factory.mktemp("slurm_run")
    tiny_study_config(wd)
    copy_run(local_run / "results" / "demo", wd / "results" / "demo")  # world + model, mtimes kept
    prof = slurm_test_layer(wd / "profile")
    t0 = time.monotonic()
    try:
        res = snakemake(
            TARGET,
            "--configfile",
            str(wd / "config.yaml"),
            "--workflow-profile",
            str(wd / "profile"),
            cwd=wd,
            timeout=900,
        )
    except subprocess.TimeoutExpired:
        subprocess.run(["scancel", "--user", str(os.getuid())], check=False)
        raise
    seconds = time.monotonic() - t0
    log = res.stdout + res.stderr
    assert res.returncode == 0, log[-6000:]
    jobs = [(int(j), s, Path(p)) for j, s, p in SUBMITTED.findall(log)]
    print(f"slurm run: {len(jobs)} Slurm jobs in {seconds:.1f} s")
    for _, sid, plog in jobs:
        print(f"  slurm job {sid}: {plog}")
    return wd, prof, log, jobs


def test_every_job_ran_as_a_slurm_job_on_its_partition(slurm_run):
    wd, prof, log, jobs = slurm_run
    stats = log.split("Job stats:")[1]
    planned = {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", stats, re.M)}
    planned.pop("total")
    planned.pop(TARGET)  # a rule without an action: Snakemake finishes it itself
    assert planned == {
        "download_corpus": 1,
        "detect_neurons": 2,
        "merge_neuron_shards": 1,
        "evaluate_baseline": 2,
        "evaluate_condition": 1,
        "collect_scores": 1,
        "make_tables": 1,
    }
    assert len(jobs) == sum(planned.values()) and "localrule" not in log.replace(
        f"localrule {TARGET}", ""
    )
    seen = {}
    for _, sid, plog in jobs:
        rule = plog.parts[plog.parts.index("slurm_logs") + 1].removeprefix("rule_")
        seen[rule] = seen.get(rule, 0) + 1
        info = scontrol(sid)  # kept by slurmctld for MinJobAge after the job ends
        assert info["JobState"] == "COMPLETED" and info["ExitCode"] == "0:0", (sid, info)
        assert Path(info["WorkDir"]) == wd
        want = prof["set-resources"].get(rule, prof["default-resources"])
        assert info["Partition"] == want["slurm_partition"], (rule, info["Partition"])
        # GPUs the job asked for (--gpus=N shows as TresPerJob=gres:gpu:N; slurm 23+: gres/gpu=N)
        asked = re.search(r"gres[:/]gpu[:=](\d+)", info.get("TresPerJob", ""))
        gpus = 1 if rule in prof["set-resources"] else 0  # the rules' gpu: the model's devices (1)
        assert (int(asked[1]) if asked else 0) == gpus, (rule, info)
        assert (wd / plog).read_text().strip(), f"empty Slurm log {plog}"
    assert seen == planned


def test_slurm_outputs_equal_the_local_run(slurm_run, local_run):
    wd = slurm_run[0]
    res = wd / "results" / "demo-llama"
    neurons = sorted(p.relative_to(wd) for p in (res / "neurons").rglob("*.safetensors"))
    assert [p.name for p in neurons] == [
        "zh.0-of-2.safetensors",
        "zh.1-of-2.safetensors",
        "zh.safetensors",
    ]  # the two shards and their merge
    for rel in neurons:
        assert (wd / rel).read_bytes() == (local_run / rel).read_bytes(), rel
    scores = sorted(p.relative_to(wd) for p in (res / "eval").rglob("*.json"))
    assert len(scores) == 3  # baselines en, zh; D_U masking zh (one file: en and zh scores)
    for rel in scores:
        assert normalised_json(wd / rel, wd) == normalised_json(local_run / rel, local_run), rel
    tables = sorted(p.relative_to(wd) for p in (res / "tables").glob("*.csv"))
    assert len(tables) >= 5
    for rel in tables:
        assert (wd / rel).read_text() == (local_run / rel).read_text(), rel
