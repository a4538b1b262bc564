"""Hostile but realistic CLI input on tiny models (issue 15, classes 1, 2, 5 and 6).

Every bad case must end with exit status 2, one line `error: <problem>; <fix>` on stderr (last
line, the only `error:` line, no traceback), and every input file byte-identical afterwards.
Bad settings must fail before the model loads: the `no_load` fixture makes loading weights an
assertion failure.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import transformers
from safetensors.torch import load_file, save_file
from testhelpers import digest, fails

from mwork.cli import main
from mwork.errors import MworkError
from mwork.modeling import load_model, load_spec
from mwork.tiny import tiny_model, train_tokenizer

TEXTS = ["hello world hello", "hallo welt", "bonjour le monde", "hola mundo"] * 5


@pytest.fixture
def model_copy(model_dir, tmp_path):
    return Path(shutil.copytree(model_dir, tmp_path / "model"))


@pytest.fixture
def corpus(tmp_path):
    p = tmp_path / "c.jsonl"
    # detection documents long enough for the corpus pool's filters (corpus.min_chars)
    p.write_text("".join(json.dumps({"text": " ".join([t] * 20)}) + "\n" for t in TEXTS[:6]))
    return p


@pytest.fixture
def no_load(monkeypatch):
    """Loading weights is a test failure (the check must come first)."""

    def boom(*args, **kwargs):
        raise AssertionError("the model was loaded before the bad input was reported")

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", boom)


def detect(model, corpus, out, *extra):
    argv = [
        "detect",
        "--model",
        model,
        "--corpus",
        corpus,
        "--lang",
        "en",
        "--out",
        out,
        "--device",
        "cpu",
        *extra,
    ]
    return [str(x) for x in argv]


# --- class 1: weights that do not load are errors, never a random model --------------------


def test_control_good_model_and_tied_lm_head(model_dir, tmp_path):
    """Controls: the tiny model loads; a tied model (no lm_head in the file) loads too."""
    model, _, adapter = load_model(str(model_dir), "float32", "cpu")
    assert adapter.n_layers == 2
    tok = train_tokenizer(TEXTS, vocab_size=100)
    tied = tiny_model("llama", vocab_size=len(tok), tie_word_embeddings=True)
    tied.save_pretrained(tmp_path / "tied")
    tok.save_pretrained(tmp_path / "tied")
    assert "lm_head.weight" not in load_file(tmp_path / "tied" / "model.safetensors")
    m, _, _ = load_model(str(tmp_path / "tied"), "float32", "cpu")
    assert torch.equal(m.lm_head.weight, tied.model.embed_tokens.weight)


def test_unrelated_tensors(capsys, model_copy, corpus, tmp_path):
    save_file({"foo": torch.zeros(3)}, str(model_copy / "model.safetensors"))
    msg = fails(
        capsys, detect(model_copy, corpus, tmp_path / "o.safetensors"), [model_copy, corpus]
    )
    assert (
        "weight(s) missing in the checkpoint" in msg and "lm_head.weight" in msg and "more" in msg
    )
    assert not (tmp_path / "o.safetensors").exists()


def test_one_weight_missing(capsys, model_copy, corpus, tmp_path):
    w = load_file(model_copy / "model.safetensors")
    del w["model.norm.weight"]
    save_file(w, str(model_copy / "model.safetensors"), metadata={"format": "pt"})
    msg = fails(
        capsys, detect(model_copy, corpus, tmp_path / "o.safetensors"), [model_copy, corpus]
    )
    assert "1 weight(s) missing" in msg and "model.norm.weight" in msg


def test_weights_of_a_deeper_model(capsys, model_copy, corpus, tmp_path):
    w = load_file(model_copy / "model.safetensors")
    w.update(
        {k.replace("layers.1.", "layers.2."): v.clone() for k, v in w.items() if "layers.1." in k}
    )
    save_file(w, str(model_copy / "model.safetensors"), metadata={"format": "pt"})
    msg = fails(
        capsys, detect(model_copy, corpus, tmp_path / "o.safetensors"), [model_copy, corpus]
    )
    assert "unexpected in the checkpoint" in msg and "model.layers.2." in msg


def test_weight_of_wrong_shape(capsys, model_copy, corpus, tmp_path):
    w = load_file(model_copy / "model.safetensors")
    w["model.norm.weight"] = torch.ones(7)
    save_file(w, str(model_copy / "model.safetensors"), metadata={"format": "pt"})
    msg = fails(
        capsys, detect(model_copy, corpus, tmp_path / "o.safetensors"), [model_copy, corpus]
    )
    assert "1 weight(s) of the wrong shape" in msg and "model.norm.weight" in msg


def test_truncated_weights(capsys, model_copy, corpus, tmp_path):
    f = model_copy / "model.safetensors"
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    msg = fails(
        capsys, detect(model_copy, corpus, tmp_path / "o.safetensors"), [model_copy, corpus]
    )
    assert "cannot load the weights" in msg


def test_model_without_tokenizer(capsys, no_load, model_copy, corpus, tmp_path):
    (model_copy / "tokenizer.json").unlink()
    msg = fails(
        capsys, detect(model_copy, corpus, tmp_path / "o.safetensors"), [model_copy, corpus]
    )
    assert "has no tokenizer files" in msg


def test_model_without_weights_or_config(capsys, no_load, model_copy, corpus, tmp_path):
    (model_copy / "model.safetensors").rename(tmp_path / "kept.safetensors")
    assert "has no weights" in fails(
        capsys, detect(model_copy, corpus, tmp_path / "o.safetensors"), [model_copy, corpus]
    )
    (model_copy / "config.json").unlink()
    assert "has no config.json" in fails(
        capsys, detect(model_copy, corpus, tmp_path / "o.safetensors"), [model_copy, corpus]
    )


def test_evaluation_loader_refuses_too(model_copy):
    """The one loader behind detection, evaluation and perplexity (modeling.load_spec)."""
    from mwork.settings import ModelSpec

    save_file({"foo": torch.zeros(3)}, str(model_copy / "model.safetensors"))
    with pytest.raises(MworkError, match="missing in the checkpoint"):
        load_spec(ModelSpec(ref=str(model_copy), dtype="float32"), "cpu")


# --- class 2: no output over an input or into a model directory ----------------------------


def test_detect_out_is_the_corpus(capsys, no_load, model_dir, corpus):
    msg = fails(capsys, detect(model_dir, corpus, corpus), [corpus, model_dir])
    assert "is also an input" in msg


def test_detect_out_is_a_symlink_or_hard_link_to_the_corpus(
    capsys, no_load, model_dir, corpus, tmp_path
):
    (tmp_path / "link.safetensors").symlink_to(corpus)
    os.link(corpus, tmp_path / "hard.safetensors")
    for out in ("link.safetensors", "hard.safetensors"):
        assert "is also an input" in fails(
            capsys, detect(model_dir, corpus, tmp_path / out), [corpus, model_dir]
        )


def test_detect_out_in_the_model_directory(capsys, no_load, model_dir, corpus):
    msg = fails(
        capsys, detect(model_dir, corpus, model_dir / "model.safetensors"), [corpus, model_dir]
    )
    assert "inside the model directory" in msg
    msg = fails(
        capsys, detect(model_dir, corpus, model_dir / "new" / "n.safetensors"), [corpus, model_dir]
    )
    assert "inside the model directory" in msg


def test_corpus_out_is_its_source(capsys, corpus):
    msg = fails(
        capsys,
        ["corpus", "--lang", "en", "--path", corpus, "--out", corpus, "--min-chars", "1"],
        [corpus],
    )
    assert "is also an input" in msg


def test_neuron_tools_never_overwrite_their_inputs(capsys, model_dir, corpus, tmp_path):
    shard = tmp_path / "s0.safetensors"
    assert main(detect(model_dir, corpus, shard, "--shard", "0/2")) == 0
    other = tmp_path / "s1.safetensors"
    assert main(detect(model_dir, corpus, other, "--shard", "1/2")) == 0
    full = tmp_path / "full.safetensors"
    assert main(["neurons", "merge", "--out", str(full), str(shard), str(other)]) == 0
    capsys.readouterr()
    cases = [
        ["neurons", "merge", "--out", shard, shard, other],
        ["neurons", "select", full, "--min-fraction", "0.5", "--out", full],
        ["neurons", "subtract", full, "--minus", shard, "--out", shard],
        ["neurons", "summary", full, "--csv", full],
    ]
    for argv in cases:
        assert "is also an input" in fails(capsys, argv, [shard, other, full])


# --- class 5: degenerate settings, refused before the model loads --------------------------


@pytest.mark.parametrize(
    "extra, expect",
    [
        (["--top-k-ffn", "48"], "top_k_ffn=48 is not below the model's 48 ffn units"),
        (["--top-k-ffn", "1000"], "top_k_ffn=1000 is not below"),
        (["--top-k-attn", "32"], "top_k_attn=32 is not below the model's 32 attn_q units"),
        (["--epsilon-ffn", "nan"], "--epsilon-ffn nan is not a finite number"),
        (["--epsilon-attn", "inf"], "--epsilon-attn inf is not a finite number"),
        (["--batch-size", "0"], "batch_size must be >= 1 (got 0)"),
        (["--n-docs", "-3"], "n_docs must be >= 1 (got -3)"),
        (["--min-fraction", "1.5"], "min_fraction 1.5 is outside (0, 1]"),
        (["--min-fraction", "0"], "min_fraction 0.0 is outside (0, 1]"),
        (["--min-fraction", "nan"], "--min-fraction nan is not a finite number"),
        (["--max-tokens", "0"], "max_tokens must be >= 1"),
        (["--device", "gpu"], "unknown device 'gpu'"),
        (["--device", "tpu:0"], "unknown device 'tpu:0'"),
        (["--device", "meta"], "device 'meta' is not supported"),
        (["--shard", "2/2"], "shard 2 is outside 0..1"),
        (["--dtype", "int8"], "unknown dtype 'int8'"),
    ],
    ids=lambda x: x if isinstance(x, str) else "-".join(x),
)
def test_degenerate_detect_settings(capsys, no_load, model_dir, corpus, tmp_path, extra, expect):
    msg = fails(
        capsys, detect(model_dir, corpus, tmp_path / "o.safetensors", *extra), [model_dir, corpus]
    )
    assert expect in msg
    assert not (tmp_path / "o.safetensors").exists()


@pytest.mark.parametrize(
    "extra, expect",
    [
        (["--min-chars", "50", "--max-chars", "10"], "max_chars=10 is below min_chars=50"),
        (["--pool-size", "0"], "pool_size must be >= 1"),
        (["--min-chars", "-1"], "min_chars must be >= 0"),
    ],
    ids=["max-below-min", "pool-0", "min-negative"],
)
def test_degenerate_corpus_settings(capsys, corpus, tmp_path, extra, expect):
    out = tmp_path / "pool.jsonl"
    assert expect in fails(
        capsys, ["corpus", "--lang", "en", "--path", corpus, "--out", out, *extra], [corpus]
    )
    assert not out.exists()


# --- class 6: errors early and as one line, not tracebacks ---------------------------------


def test_out_is_a_directory_or_unwritable(capsys, no_load, model_dir, corpus, tmp_path):
    (tmp_path / "dir.safetensors").mkdir()
    assert "is a directory" in fails(
        capsys, detect(model_dir, corpus, tmp_path / "dir.safetensors"), [model_dir, corpus]
    )
    assert "is a file, not a folder" in fails(
        capsys, detect(model_dir, corpus, corpus / "x.safetensors"), [model_dir, corpus]
    )
    # /proc takes no new files, even for root (permission bits would say otherwise)
    assert "is not writable" in fails(
        capsys, detect(model_dir, corpus, "/proc/mwork/x.safetensors"), [model_dir, corpus]
    )
    if os.geteuid() != 0:  # a read-only folder only binds non-root users
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o555)
        assert "is not writable" in fails(
            capsys, detect(model_dir, corpus, ro / "x.safetensors"), [model_dir, corpus]
        )


def test_invalid_utf8_corpus(capsys, no_load, model_dir, tmp_path):
    bad = tmp_path / "latin1.jsonl"
    bad.write_bytes(b'{"text": "ok"}\n{"text": "caf\xe9"}\n')
    msg = fails(capsys, detect(model_dir, bad, tmp_path / "o.safetensors"), [model_dir, bad])
    assert "line 2 is not valid UTF-8" in msg
    assert "line 2 is not valid UTF-8" in fails(
        capsys, ["corpus", "--lang", "en", "--path", bad, "--out", tmp_path / "p.jsonl"], [bad]
    )


def test_utf8_bom_corpus_is_accepted(capsys, tmp_path):
    bom = tmp_path / "bom.jsonl"
    bom.write_bytes(b"\xef\xbb\xbf" + b'{"text": "hello world"}\n{"text": "hallo welt"}\n')
    out = tmp_path / "pool.jsonl"
    assert (
        main(["corpus", "--lang", "en", "--path", str(bom), "--out", str(out), "--min-chars", "1"])
        == 0
    )
    assert [json.loads(x)["text"] for x in out.read_text().splitlines()] == [
        "hello world",
        "hallo welt",
    ]


def test_parquet_corpus_problems(capsys, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    ints = tmp_path / "ints.parquet"
    pq.write_table(pa.table({"text": [1, 2, 3]}), ints)
    out = tmp_path / "pool.jsonl"
    assert "holds int64, not strings" in fails(
        capsys, ["corpus", "--lang", "en", "--path", ints, "--out", out], [ints]
    )
    junk = tmp_path / "junk.parquet"
    junk.write_bytes(b"not parquet at all")
    assert "not a readable Parquet file" in fails(
        capsys, ["corpus", "--lang", "en", "--path", junk, "--out", out], [junk]
    )
    assert not out.exists()


def test_file_and_directory_reported_as_such(capsys, no_load, model_dir, corpus, tmp_path):
    msg = fails(
        capsys, detect(model_dir, tmp_path, tmp_path / "o.safetensors"), [model_dir, corpus]
    )
    assert f"corpus file {tmp_path} is a directory, not a file" in msg
    msg = fails(capsys, detect(corpus, corpus, tmp_path / "o.safetensors"), [corpus])
    assert "is a file, not a model directory" in msg
    assert "is a directory, not a file" in fails(capsys, ["neurons", "summary", tmp_path], [corpus])


def test_ctrl_c_exits_130_without_traceback(capsys, monkeypatch, corpus):
    def interrupted(a):
        raise KeyboardInterrupt

    monkeypatch.setattr("mwork.cli._run_corpus", interrupted)
    code = main(["corpus", "--lang", "en", "--path", str(corpus), "--out", str(corpus) + ".out"])
    assert code == 130 and "Traceback" not in capsys.readouterr().err


def test_ctrl_c_in_a_real_process(tmp_path):
    """SIGINT while the corpus command waits on its input (a FIFO): exit 130, no traceback."""
    fifo = tmp_path / "slow.jsonl"
    os.mkfifo(fifo)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mwork.cli",
            "corpus",
            "--lang",
            "en",
            "--path",
            str(fifo),
            "--out",
            str(tmp_path / "pool.jsonl"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while True:  # the FIFO opens for writing once the command is reading it
        try:
            w = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            break
        except OSError:
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    os.close(w)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert not (tmp_path / "pool.jsonl").exists()


@pytest.mark.slow  # a fresh interpreter importing mwork (~2.5 s)
def test_closed_stdout_pipe_is_quiet(model_dir, corpus, tmp_path):
    """`mwork neurons summary F | head -0`: no traceback, the SIGPIPE status, file untouched."""
    f = tmp_path / "n.safetensors"
    assert main(detect(model_dir, corpus, f)) == 0
    before = digest([f])
    r, w = os.pipe()
    os.close(r)  # the reader has gone before the first write: a broken pipe for sure
    proc = subprocess.run(
        [sys.executable, "-m", "mwork.cli", "neurons", "summary", str(f)],
        stdout=w,
        stderr=subprocess.PIPE,
        text=True,
        timeout=120,
    )
    os.close(w)
    assert proc.returncode == 141 and proc.stderr == "", proc.stderr
    assert digest([f]) == before


def test_rule_log_ends_with_the_error_line(tmp_path):
    """In a Snakemake rule log an MworkError is the last line (exit 2); other errors keep the
    traceback (exit 1)."""
    log = tmp_path / "rule.log"
    code = (
        "import sys; from mwork.runlog import setup_rule_logging;"
        "from mwork.errors import MworkError;"
        "setup_rule_logging(sys.argv[1], model='m');"
        "bad = MworkError('corpus x is empty', 'download it');"
        "raise (bad if sys.argv[2] == 'mwork' else ValueError('bug'))"
    )
    res = subprocess.run(
        [sys.executable, "-c", code, str(log), "mwork"], capture_output=True, text=True, timeout=120
    )
    lines = log.read_text().strip().splitlines()
    assert res.returncode == 2 and lines[-1] == "error: corpus x is empty; download it", lines
    assert "Traceback" not in log.read_text() and "model: m" in lines[-2]
    res = subprocess.run(
        [sys.executable, "-c", code, str(log), "other"], capture_output=True, text=True, timeout=120
    )
    assert (
        res.returncode == 1
        and "Traceback" in log.read_text()
        and "ValueError: bug" in log.read_text()
    )
