"""Lists the workflow and the package both hold stay equal (the DAG does not import the package)."""

import ast
import re
from pathlib import Path

from mwork.lmeval_tasks import BENCHMARKS, TASKS
from mwork.runlabel import BASELINE, CONDITIONS, RUN_LABEL_PATTERN, RunLabel
from mwork.settings import config_schema
from mwork.tables import TABLE_FILES

ROOT = Path(__file__).resolve().parents[2]
COMMON = (ROOT / "rules" / "common.smk").read_text(encoding="utf-8")


def smk_value(name: str):
    """The literal assigned to `name` at the top level of rules/common.smk."""
    m = re.search(rf"^{name} = (\[.*?\]|\(.*?\))\n", COMMON, flags=re.M | re.S)
    assert m, f"{name} not found in rules/common.smk"
    return ast.literal_eval(m.group(1))


def test_task_names():
    assert smk_value("EVAL_TASKS") == list(TASKS) == list(BENCHMARKS)
    schema = config_schema()["properties"]["evaluation"]["properties"]
    assert schema["tasks"]["propertyNames"]["enum"] == list(TASKS)
    assert schema["local"]["propertyNames"]["enum"] == list(TASKS)
    assert schema["sweep"]["properties"]["task"]["enum"] == list(TASKS)


def test_table_names():
    assert smk_value("TABLE_NAMES") == list(TABLE_FILES.values())


def test_run_label_pattern():
    assert smk_value("RUN_LABEL") == RUN_LABEL_PATTERN
    # the schema's condition pattern is the same grammar without the seed (added per seed)
    schema = config_schema()["properties"]["evaluation"]["properties"]["tasks"]
    pattern = schema["additionalProperties"]["properties"]["conditions"]["items"]["pattern"]
    for name in CONDITIONS:
        for label in (name, f"{name}-n1_3", f"{name}.minus-en", f"{name}-n1_2-n2_1.minus-shared"):
            assert re.fullmatch(RUN_LABEL_PATTERN, label) and re.fullmatch(pattern, label), label
            if CONDITIONS[name].is_random:
                assert re.fullmatch(RUN_LABEL_PATTERN, f"{label}-s4")
                assert not re.fullmatch(pattern, f"{label}-s4")
            assert RunLabel.parse(label).table_condition == label
    assert not re.fullmatch(RUN_LABEL_PATTERN, BASELINE)
    for label in ("ft_ls-400", "ft_random-100", "ft_full-400"):  # fine-tuned runs (paper §4)
        run = RunLabel.parse(label)
        assert re.fullmatch(RUN_LABEL_PATTERN, label) and not re.fullmatch(pattern, label)
        assert run.is_finetuned and run.text == label and run.spec is None
    assert not re.fullmatch(RUN_LABEL_PATTERN, "ft_lora-400")
