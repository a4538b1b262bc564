"""Static checks of the deployment files: conda env pins, `conda:` on every rule, the profiles.

Conda channels are unreachable here, so `--sdm conda` itself cannot run; these tests check what
can be checked offline. The rule facts are parsed from rules/*.smk, so a new GPU rule or a rule
without `conda:` fails here without anyone updating a list.
"""

import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml
import yte

ROOT = Path(__file__).resolve().parents[2]
ENV = ROOT / "envs" / "mwork.yaml"
KNOWN_GPU_RULES = {  # the GPU rules at the time of writing; the parser must find at least these
    "detect_neurons",
    "evaluate_baseline",
    "evaluate_condition",
    "run_language_lens",
    "measure_deactivation_ppl",
    "record_activations",
    "finetune_neurons",
    "finetune_language",
    "evaluate_finetuned",
}
# Runner-side packages: they drive the jobs from the submitting environment and are not needed
# inside the jobs' conda env (Snakemake puts its own install on the scripts' sys.path).
RUNNER_ONLY = {"snakemake", "snakemake-executor-plugin-slurm"}


def norm(name: str) -> str:
    """PEP 503 normalised distribution name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def rule_blocks() -> dict[str, tuple[Path, str]]:
    """Every rule of rules/*.smk and the Snakefile, also those defined inside an `if` block:
    name -> (file, body text dedented to the rule's own level)."""
    blocks = {}
    for path in [ROOT / "Snakefile", *sorted((ROOT / "rules").glob("*.smk"))]:
        text = path.read_text(encoding="utf-8")
        for head in re.finditer(r"^( *)rule (\w+):", text, re.M):
            indent = len(head[1])
            rest = text[head.end() :]
            # the rule ends at the next non-blank line indented no deeper than `rule` itself
            end = re.search(rf"^ {{0,{indent}}}\S", rest, re.M)
            body = rest[: end.start()] if end else rest
            blocks[head[2]] = (path, re.sub(rf"^ {{{indent}}}", "", body, flags=re.M))
    return blocks


def directive(body: str, name: str) -> str | None:
    """The text of one directive of a rule body (up to the next directive), or None."""
    m = re.search(rf"^    {name}:(.*?)(?=^    \w+:|\Z)", body, re.M | re.S)
    return m[1] if m else None


def gpu_rules() -> set[str]:
    """Rules whose `resources:` directive declares `gpu`."""
    out = set()
    for name, (_, body) in rule_blocks().items():
        res = directive(body, "resources")
        if res and re.search(r"^\s*gpu\s*=", res, re.M):
            out.add(name)
    return out


def load_profile(name: str) -> dict:
    """A profile parsed the way Snakemake parses it (yte over YAML, anchors resolved)."""
    with open(ROOT / "profiles" / name / "config.yaml") as f:
        return yte.process_yaml(f, require_use_yte=True)


def pyproject_pins() -> dict[str, str]:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = {}
    for dep in deps:
        m = re.fullmatch(r"([A-Za-z0-9_.\-]+)\s*==\s*([^\s;]+)", dep)
        if m:
            pins[norm(m[1])] = m[2]
    return pins


def torch_pin() -> str:
    """The torch version run.sh installs (pyproject only bounds torch, see its comment)."""
    m = re.search(r"TORCH_SPEC:-torch==([\w.+]+)\}", (ROOT / "run.sh").read_text())
    assert m, "run.sh no longer pins torch with TORCH_SPEC"
    return m[1]


# --- conda env ---------------------------------------------------------------------------------


def env() -> dict:
    return yaml.safe_load(ENV.read_text())


def env_pip_pins() -> dict[str, str]:
    pip = next(d["pip"] for d in env()["dependencies"] if isinstance(d, dict))
    pins = {}
    for item in pip:
        assert not item.startswith("-"), f"{item!r}: options and -r files do not survive env copies"
        m = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([\w.+]+)", item)
        assert m, f"pip item {item!r} is not pinned as name==version"
        pins[norm(m[1])] = m[2]
    return pins


def test_env_file_has_only_conda_forge_and_exact_conda_pins():
    spec = env()
    assert set(spec) <= {"name", "channels", "dependencies"}
    assert spec["channels"] == ["conda-forge", "nodefaults"]
    for dep in spec["dependencies"]:
        if isinstance(dep, dict):
            assert set(dep) == {"pip"}
            continue
        assert re.fullmatch(r"[a-z0-9_\-]+ ?=[0-9][\w.]*", dep), (
            f"{dep!r} is not pinned as name =x.y"
        )
    conda = {
        d.split("=")[0].strip(): d.split("=")[1] for d in spec["dependencies"] if isinstance(d, str)
    }
    assert {"python", "pip"} <= set(conda)


def test_env_python_satisfies_requires_python():
    python = next(
        d for d in env()["dependencies"] if isinstance(d, str) and d.startswith("python ")
    )
    minor = tuple(int(x) for x in python.split("=")[1].split(".")[:2])
    req = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert minor >= tuple(int(x) for x in req.removeprefix(">=").split(".")[:2])


def test_env_pins_exactly_what_pyproject_pins():
    expected = {k: v for k, v in pyproject_pins().items() if k not in RUNNER_ONLY}
    expected["torch"] = torch_pin()
    assert env_pip_pins() == expected


def test_env_does_not_install_the_package_from_the_working_directory():
    """The package comes from the post-deploy script, located relative to the script itself."""
    deploy = ENV.with_name("mwork.post-deploy.sh")
    assert deploy.exists(), "Snakemake runs <env>.post-deploy.sh after creating the env"
    lines = deploy.read_text().splitlines()
    body = "\n".join(x for x in lines if not x.lstrip().startswith("#"))
    assert "$PWD" not in body and "${PWD}" not in body, "the working directory is not the workflow"
    assert "BASH_SOURCE" in body or "$0" in body
    assert "--no-deps" in body, "dependencies come pinned from the env file"


# --- rules -------------------------------------------------------------------------------------


def test_rule_parser_sees_every_rule():
    blocks = rule_blocks()
    assert KNOWN_GPU_RULES <= set(blocks) and {"merge_neuron_shards", "all"} <= set(blocks)
    assert KNOWN_GPU_RULES <= gpu_rules(), "the rule-file parser no longer finds resources: gpu"
    assert "merge_neuron_shards" not in gpu_rules()


def test_every_rule_that_runs_python_declares_an_existing_conda_env():
    checked = 0
    for name, (path, body) in rule_blocks().items():
        runs = (
            directive(body, "script")
            or directive(body, "run") is not None
            or ((directive(body, "shell") or "").find("python") >= 0)
        )
        if not runs:
            continue
        conda = directive(body, "conda")
        assert conda, f"rule {name} ({path.name}) runs Python but declares no conda env"
        env_path = (path.parent / conda.strip().strip('"').strip("'")).resolve()
        assert env_path == ENV.resolve(), f"rule {name}: unexpected env {env_path}"
        checked += 1
    assert checked >= 15


# --- profiles ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["default", "slurm"])
def test_every_profile_line_is_commented(name):
    for i, line in enumerate(
        (ROOT / "profiles" / name / "config.yaml").read_text().splitlines(), 1
    ):
        assert not line.strip() or "#" in line, f"profiles/{name}/config.yaml:{i} has no comment"


def test_every_gpu_rule_goes_to_a_gpu_partition_on_slurm():
    prof = load_profile("slurm")
    assert prof["executor"] == "slurm"
    cpu_partition = prof["default-resources"]["slurm_partition"]
    per_rule = prof["set-resources"]
    partitions = set()
    for rule in sorted(gpu_rules()):
        res = per_rule.get(rule)
        assert res, f"GPU rule {rule} is not in profiles/slurm set-resources"
        assert res.get("slurm_partition") and res["slurm_partition"] != cpu_partition, rule
        partitions.add(res["slurm_partition"])
        # the GPU count is the rule's (per model: models.<alias>.devices), never a fixed 1 here
        assert "gpu" not in res and "gres" not in res, f"{rule}: gpu comes from the rule"
        body = rule_blocks()[rule][1].replace(" ", "")
        assert "gpu=get_model_gpus" in body or "gpu=get_eval_gpus" in body, rule
        for key in ("mem_mb", "runtime", "cpus_per_task"):
            assert int(res[key]) > 0, f"{rule}: {key}"
    assert len(partitions) == 1, "one place to edit: every GPU rule uses the same GPU partition"
    assert not set(per_rule) - gpu_rules(), "set-resources names a rule that is not a GPU rule"
    # CPU rules only get the defaults, which must not ask for a GPU
    assert "gpu" not in prof["default-resources"] and "gres" not in prof["default-resources"]


def test_the_default_profile_asks_for_a_gpu_only_where_a_driver_is_installed():
    prof = load_profile("default")
    assert int(prof["resources"]["gpu"]) == 1
    assert set(prof["set-resources"]) == gpu_rules()
    has_driver = int(shutil.which("nvidia-smi") is not None)
    for rule, res in prof["set-resources"].items():
        # evaluated with the names Snakemake offers resource expressions
        assert eval(res["gpu"], {"shutil": shutil}) == has_driver, rule


def test_post_deploy_installs_the_checkout_it_lives_in_from_any_directory(tmp_path):
    """Run it the way Snakemake does (`<shebang interpreter> <file>`), with a stand-in pip."""
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "pip").write_text('#!/bin/sh\necho "pip $*" >> "$PIP_LOG"\n')
    (fake / "pip").chmod(0o755)
    run_env = {
        **os.environ,
        "PATH": f"{fake}:{os.environ['PATH']}",
        "PIP_LOG": str(tmp_path / "log"),
    }
    run_env.pop("MWORK_PIP_SPEC", None)
    script = ROOT / "envs" / "mwork.post-deploy.sh"
    res = subprocess.run(
        ["bash", str(script)], cwd=tmp_path, env=run_env, capture_output=True, text=True
    )
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "log").read_text() == f"pip install --no-deps {ROOT}\n"
    # a copy outside the checkout (remote workflow source) needs MWORK_PIP_SPEC
    copy = tmp_path / "copy.post-deploy.sh"
    copy.write_text(script.read_text())
    res = subprocess.run(
        ["bash", str(copy)], cwd=tmp_path, env=run_env, capture_output=True, text=True
    )
    assert res.returncode == 2 and "MWORK_PIP_SPEC" in res.stderr
    spec = "git+https://example.org/mwork@v0.1.0"
    res = subprocess.run(
        ["bash", str(copy)],
        cwd=tmp_path,
        env={**run_env, "MWORK_PIP_SPEC": spec},
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0 and (tmp_path / "log").read_text().endswith(f"--no-deps {spec}\n")
