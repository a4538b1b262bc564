"""Train the demo's tiny Llama model and its byte-level BPE tokenizer, offline, on CPU.

The result is an ordinary Hugging Face model directory (`AutoModelForCausalLM.from_pretrained`
and `AutoTokenizer.from_pretrained` load it) plus `train_log.json` (settings, data sizes and the
loss curve). Training is deterministic given the seed and the thread count.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import transformers
from tqdm import tqdm
from transformers import PreTrainedModel, PreTrainedTokenizerFast

from mwork.errors import MworkError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    """Model size and optimisation settings (see demo/config.yaml for the reasons)."""

    seed: int = 0
    steps: int = 300
    batch_size: int = 16
    seq_len: int = 256
    lr: float = 4e-3
    warmup_steps: int = 20
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    vocab_size: int = 4096
    hidden_size: int = 128
    intermediate_size: int = 384
    n_layers: int = 6
    n_heads: int = 4
    threads: int = 2
    log_every: int = 10

    @classmethod
    def from_dict(cls, values: Mapping[str, object]) -> TrainConfig:
        """Build from a config mapping; unknown keys or non-positive sizes raise MworkError."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise MworkError(f"unknown demo train settings {unknown}", f"use only {sorted(known)}")
        cfg = cls(**dict(values))  # type: ignore[arg-type]
        sizes = (
            "steps",
            "batch_size",
            "seq_len",
            "vocab_size",
            "hidden_size",
            "intermediate_size",
            "n_layers",
            "n_heads",
            "threads",
            "log_every",
        )
        bad = [n for n in sizes if int(getattr(cfg, n)) < 1]
        if bad or cfg.lr <= 0 or cfg.hidden_size % cfg.n_heads:
            raise MworkError(
                f"bad demo train settings {bad or ['lr/hidden_size/n_heads']}",
                "use positive sizes, lr > 0 and hidden_size divisible by n_heads",
            )
        return cfg


def read_texts(path: str | Path) -> list[str]:
    """The `text` field of every line of a JSON Lines file."""
    texts = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            row = json.loads(line)
            if not isinstance(row.get("text"), str):
                raise MworkError(
                    f"{path}:{n} has no string 'text' field", "regenerate the demo world"
                )
            texts.append(row["text"])
    if not texts:
        raise MworkError(f"{path} is empty", "regenerate the demo world")
    return texts


def build_tokenizer(
    texts: Sequence[str], vocab_size: int, model_max_length: int = 1024
) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer trained on `texts`; ids 0/1/2 = <pad>/<s>/</s>.

    Chinese characters are pre-split one by one (as SentencePiece vocabularies mostly treat
    them), so a run of Han characters cannot become one whole-phrase token. Encoding prepends
    <s> (like Llama tokenizers), so `tokenizer(prompt)` matches the training sequences.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(r"\p{Han}"), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<pad>", "<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(texts), trainer=trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", 1)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<pad>",
        bos_token="<s>",
        eos_token="</s>",
        model_max_length=model_max_length,
        padding_side="right",
    )


def pack(
    token_lists: Sequence[Sequence[int]], seq_len: int, pad_id: int, generator: torch.Generator
) -> torch.Tensor:
    """Pack whole documents (shuffled) into rows of `seq_len` tokens, right-padded with `pad_id`.

    A document never straddles two rows; one longer than `seq_len` is truncated.

    Returns:
        [n_rows, seq_len] int64 token ids.
    """
    order = torch.randperm(len(token_lists), generator=generator).tolist()
    rows: list[list[int]] = []
    row: list[int] = []
    for i in order:
        doc = list(token_lists[i])[:seq_len]
        if len(row) + len(doc) > seq_len:
            rows.append(row + [pad_id] * (seq_len - len(row)))
            row = []
        row += doc
    if row:
        rows.append(row + [pad_id] * (seq_len - len(row)))
    return torch.tensor(rows, dtype=torch.long)


def build_model(cfg: TrainConfig, tokenizer: PreTrainedTokenizerFast) -> PreTrainedModel:
    """A freshly initialised (seeded) Llama causal LM sized by `cfg`, with tied embeddings."""
    config = transformers.LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=cfg.hidden_size,
        intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.n_layers,
        num_attention_heads=cfg.n_heads,
        num_key_value_heads=cfg.n_heads,
        max_position_embeddings=max(1024, cfg.seq_len),
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        initializer_range=0.02,
    )
    torch.manual_seed(cfg.seed)
    model = transformers.LlamaForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model


def train_model(
    texts: Sequence[str], cfg: TrainConfig, progress: bool = True
) -> tuple[PreTrainedModel, PreTrainedTokenizerFast, dict[str, object]]:
    """Train tokenizer and model on `texts`; returns (model in eval mode, tokenizer, log dict)."""
    torch.set_num_threads(cfg.threads)
    start = time.perf_counter()
    tokenizer = build_tokenizer(texts, cfg.vocab_size)
    ids = tokenizer(list(texts), add_special_tokens=True)["input_ids"]
    docs = [d + [tokenizer.eos_token_id] for d in ids]
    generator = torch.Generator().manual_seed(cfg.seed)
    model = build_model(cfg, tokenizer)
    model.train()
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
    opt = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": cfg.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=cfg.lr,
        betas=(0.9, 0.95),
    )
    sched = transformers.get_cosine_schedule_with_warmup(
        opt, min(cfg.warmup_steps, cfg.steps), cfg.steps
    )
    data = pack(docs, cfg.seq_len, tokenizer.pad_token_id, generator)
    batches_per_epoch = max(1, len(data) // cfg.batch_size)
    losses: list[tuple[int, float]] = []
    n_seen = 0
    bar = tqdm(range(cfg.steps), desc="train demo model", disable=not progress, mininterval=5.0)
    for step in bar:
        b = step % batches_per_epoch
        if b == 0 and step > 0:
            data = pack(docs, cfg.seq_len, tokenizer.pad_token_id, generator)
        batch = data[b * cfg.batch_size : (b + 1) * cfg.batch_size]  # [B, T]
        labels = batch.masked_fill(batch == tokenizer.pad_token_id, -100)
        loss = model(input_ids=batch, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        n_seen += int((labels != -100).sum())
        if step % cfg.log_every == 0 or step == cfg.steps - 1:
            losses.append((step, float(loss.detach())))
            bar.set_postfix(loss=f"{losses[-1][1]:.3f}")
            log.info(
                "step %d/%d loss %.4f lr %.2e",
                step + 1,
                cfg.steps,
                losses[-1][1],
                sched.get_last_lr()[0],
            )
    model.eval()
    n_tokens = sum(len(d) for d in docs)
    summary: dict[str, object] = {
        "config": dataclasses.asdict(cfg),
        "n_docs": len(docs),
        "n_tokens": n_tokens,
        "n_rows": len(data),
        "vocab_size": len(tokenizer),
        "tokens_trained": n_seen,
        "epochs": round(n_seen / max(1, n_tokens), 3),
        "final_loss": losses[-1][1],
        "final_ppl": math.exp(losses[-1][1]),
        "loss_curve": losses,
        "n_params": sum(p.numel() for p in model.parameters()),
        "wall_s": round(time.perf_counter() - start, 1),
    }
    return model, tokenizer, summary


def save_model_dir(
    out_dir: str | Path,
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerFast,
    summary: Mapping[str, object],
) -> Path:
    """Write model + tokenizer + train_log.json into `out_dir` atomically (temp dir, then rename)."""
    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    (tmp / "train_log.json").write_text(
        json.dumps(summary, indent=1, sort_keys=True) + "\n", encoding="utf-8"
    )
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)
    return out


def train_demo_model(
    train_jsonl: str | Path,
    out_dir: str | Path,
    train: Mapping[str, object] | TrainConfig,
    seed: int | None = None,
) -> Path:
    """Train the demo model on `train_jsonl` and write the model directory `out_dir`.

    Args:
        train_jsonl: training mixture (JSON Lines with a `text` field).
        out_dir: model directory to create (replaced if present).
        train: settings, a TrainConfig or its mapping (config["demo"]["train"]).
        seed: overrides `train`'s seed when given (config["demo"]["seed"]).
    """
    cfg = train if isinstance(train, TrainConfig) else TrainConfig.from_dict(train)
    if seed is not None:
        cfg = dataclasses.replace(cfg, seed=int(seed))
    texts = read_texts(train_jsonl)
    model, tokenizer, summary = train_model(texts, cfg)
    log.info(
        "trained %d steps on %d tokens (%.2f epochs), final loss %.3f, %.0f s",
        cfg.steps,
        summary["n_tokens"],
        summary["epochs"],
        summary["final_loss"],
        summary["wall_s"],
    )
    return save_model_dir(out_dir, model, tokenizer, summary)
