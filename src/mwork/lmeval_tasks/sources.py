"""Where a task spec's data comes from: the Hub (a revision, or the parquet export) or a local file.

`datasets` 5.x refuses loading scripts (`RuntimeError: Dataset scripts are no longer supported`).
Each benchmark has a default Hub revision that loads without one: `juletxara/mgsm` and
`google/xquad` hold parquet on their main branch (MGSM since 2026, lm-eval issue #3390);
`INK-USC/xcsr` and `csebuetnlp/xlsum` are script repositories, read from the Hub's automatic
parquet export, the `refs/convert/parquet` branch (`PARQUET_EXPORT`). That branch holds one folder
per config (`<config>/<split>/*.parquet`) and no dataset card, so `load_dataset(id, name=config,
revision=...)` would not find the config (datasets infers a single "default" config that mixes
all languages); such a task therefore reads that config's parquet files by URL
(`hf://datasets/<id>@refs%2Fconvert%2Fparquet/<config>/<split>/*.parquet`) with the packaged
parquet builder. Any other revision (a branch, tag or commit) is passed to `load_dataset` as
`revision=` through lm-eval's `dataset_kwargs`. A local file (`source: local`, `.jsonl`/`.json`
or `.parquet`, the HF schema) overrides the Hub.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from mwork.errors import MworkError
from mwork.lmeval_tasks.benchmarks import BENCHMARKS, LOCAL_BUILDERS, PARQUET_EXPORT

if TYPE_CHECKING:
    from mwork.lmeval_tasks.spec import TaskSpec


def hf_source(spec: TaskSpec) -> tuple[str, str, str | None]:
    """(dataset id, config name, revision) a source-"hf" spec reads."""
    bench = BENCHMARKS[spec.task]
    dataset = spec.hf_dataset or bench.hf_dataset
    revision = spec.hf_revision if spec.hf_revision is not None else bench.revision
    return dataset, spec.hf_name or bench.hf_configs[spec.lang], revision or None


def parquet_export_files(dataset: str, config: str, split: str) -> str:
    """URL pattern of one config/split in the Hub's parquet export (refs/convert/parquet)."""
    branch = PARQUET_EXPORT.replace("/", "%2F")
    return f"hf://datasets/{dataset}@{branch}/{config}/{split}/*.parquet"


def dataset_keys(spec: TaskSpec, cache_dir: str | Path | None) -> dict[str, Any]:
    """lm-eval's dataset_path / dataset_name / dataset_kwargs (passed to datasets.load_dataset
    as load_dataset(path=dataset_path, name=dataset_name, **dataset_kwargs))."""
    kwargs: dict[str, Any] = {}
    split = BENCHMARKS[spec.task].split
    if spec.source == "local":
        local = Path(spec.path or "").expanduser().resolve()
        if not local.is_file():
            raise MworkError(f"{spec.name}: data file {local} does not exist", "fix 'path'")
        kwargs["data_files"] = {split: str(local)}
        path, name = LOCAL_BUILDERS[local.suffix.lower()], None
    else:
        dataset, config, revision = hf_source(spec)
        if revision == PARQUET_EXPORT:  # no card on that branch: read the config's files
            kwargs["data_files"] = {split: parquet_export_files(dataset, config, split)}
            path, name = "parquet", None
        else:
            path, name = dataset, config
            if revision is not None:
                kwargs["revision"] = revision
    if cache_dir is not None:
        kwargs["cache_dir"] = str(Path(cache_dir).resolve())
    return {"dataset_path": path, "dataset_name": name, "dataset_kwargs": kwargs}
