# Config validation, globals, wildcard constraints, `pick` and the model spec shared by all rule
# files. The schema (also mwork.settings' source of every default) lives in the package; which jobs
# and targets exist is decided by mwork.plan (torch-free, unit-tested); each stage's input and
# settings functions are in rules/helpers.smk. Rules pass their scripts only the config values the job uses,
# so an unrelated edit never re-plans a GPU job under `rerun-triggers: params`.
import re
import sys
import time
from pathlib import Path

try:
    import mwork
except ImportError:  # Snakemake from another environment: plan from the sources beside us
    sys.path.insert(0, str(Path(workflow.basedir) / "src"))
from mwork.configcheck_values import check_config_files
from mwork.devices import gpu_count
from mwork.layout import TABLE_FILES
from mwork.lmeval_tasks import TASKS
from mwork.plan import ALL, ENGLISH, ConfigError, Plan
from mwork.preflight import preflight_warnings
from mwork.runlog import failed_log_tails
from mwork.runlabel import CONDITION_LABEL_PATTERN
from mwork.settings import schema_default
from mwork.studyconfig import validate_config


def config_error(problem, fix):
    """Stop at workflow start with one line `error: config: <problem>; <fix>` and exit 2."""
    print(f"error: config: {' '.join(str(problem).split())}; {fix}", file=sys.stderr)
    sys.exit(2)


try:  # Snakemake's YAML loader keeps the last of two equal keys silently; then the schema
    check_config_files(workflow.configfiles)  # (defaults filled in) and Plan.check()
    validate_config(config)
except ConfigError as exc:
    config_error(exc.problem, exc.fix)
PLAN = Plan(config)
RUN_STARTED = time.time()  # logs written after this are this run's (Snakefile onerror)
if workflow.is_main_process:  # what the config drops or shortens (mwork plan), before any job
    for line in preflight_warnings(PLAN):
        print(f"warning: {line}", file=sys.stderr)
if workflow.is_main_process:  # start-up (and dry-run) log: which model serves which figure/table
    print("\n".join(PLAN.roles.summary()), file=sys.stderr)

MODELS = PLAN.models
DETECT_LANGS = PLAN.detect_langs
ALL_LANGS = PLAN.all_langs
DETECTION = config["detection"]
EVAL = config.get("evaluation")  # None: detection only
FT = config.get("finetune")  # None: nothing is fine-tuned
FIGURES = config["figures"]
LENS = FIGURES["lens"]


wildcard_constraints:
    model="|".join(re.escape(m) for m in MODELS),
    lang="|".join(ALL_LANGS),
    shard=r"\d+",
    n=r"\d+",
    variant="minus-en|minus-shared",
    condition=CONDITION_LABEL_PATTERN,
    kind="ls|random|full",
    task="|".join(TASKS),
    mask_lang="|".join(l for l in ALL_LANGS if l != ENGLISH),
    lens_variant="released|released_layer0|normed",
    overlap_fig="|".join(FIGURES["overlap"]) or "none",


def pick(section, keys):
    """The named keys of a config section (what one job uses)."""
    return {k: section[k] for k in keys}


def model_spec(model, split):
    """mwork.settings.ModelSpec fields of a model alias; the layer split only where it is used."""
    spec = config["models"][model]
    out = {
        "ref": spec.get("path") or spec["hf_id"],
        "name": model,
        "dtype": spec["dtype"],
        "trust_remote_code": spec["trust_remote_code"],
        "n_layers": spec["n_layers"],
    }
    if split:
        out.update(n1=spec["n1"], n2=spec["n2"])
    for key in ("devices", "max_memory", "offload_folder"):  # placement: only where set,
        default = schema_default(f"models/{key}")  # so older jobs' params stay as they were
        if spec.get(key, default) != default:
            out[key] = spec[key]
    return out


def get_model_load(wildcards):
    """What a job needs to load the model (detection, lens): no layer split."""
    return model_spec(wildcards.model, split=False)


def get_model_spec(wildcards):
    """What a masking job needs: the model and its understanding/generation layer split."""
    return model_spec(wildcards.model, split=True)


def get_model_input(wildcards):
    """The model directory as a rule input when the workflow builds it (demo) or it is local."""
    spec = config["models"][wildcards.model]
    return [spec["path"]] if "path" in spec else []


def get_model_gpus(wildcards):
    """GPUs a job of the model asks for (`resources: gpu`): models.<alias>.devices, 1 by default
    (mwork.devices.gpu_count). profiles/default replaces it by 0/1 for the local cap."""
    return gpu_count(config["models"][wildcards.model].get("devices", 1))


def get_eval_gpus(wildcards):
    """GPUs of an evaluation job: the model's, or evaluation.vllm.tensor_parallel_size with the
    vLLM backend when that is more (one engine spans that many GPUs)."""
    ev = config.get("evaluation") or {}
    tp = (ev.get("vllm") or {}).get("tensor_parallel_size", 1) if ev.get("backend") == "vllm" else 1
    return max(get_model_gpus(wildcards), tp)
