"""Neuron-sparse fine-tuning on tiny models (float64): hooks, gradients, changes, state."""

from __future__ import annotations

import copy
import logging

import pytest
import torch

from mwork.adapters import COMPONENTS, get_adapter
from mwork.errors import MworkError
from mwork.finetune.delta import apply_delta, delta_tensors, serialize
from mwork.finetune.run import finetune
from mwork.finetune.settings import FinetuneSettings
from mwork.finetune.sparse import attach_sparse, slice_plan
from mwork.finetune.trainer import FinetuneTrainer
from mwork.neuronset import NeuronSet
from mwork.tiny import FAMILIES, tiny_model, train_tokenizer

TEXTS = [
    f"doc {i}: " + " ".join(f"w{(i * j + 3) % 41}" for j in range(12 + 2 * i)) for i in range(20)
]
FAST = dict(
    lr=1e-2, batch_size=4, micro_batch_size=2, max_length=32, warmup_ratio=0.0, progress=False
)


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer(TEXTS, vocab_size=96)


def selection(adapter, p: float = 0.25, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        c: torch.rand(adapter.n_layers, adapter.n_units(c), generator=g) < p for c in COMPONENTS
    }


def neuron_set(sel: dict[str, torch.Tensor]) -> NeuronSet:
    return NeuronSet(
        sel, {c: s.to(torch.int32) for c, s in sel.items()}, {"n_docs": "1", "language": "de"}
    )


def batch(vocab: int, seed: int = 1) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, vocab, (2, 10), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 7:] = 0
    return {"input_ids": ids, "attention_mask": mask}


def logits(model, inputs) -> torch.Tensor:
    with torch.no_grad():
        return model(**inputs).logits


def expected_slice_size(family: str, component: str, d: int, train_gate: bool = True) -> int:
    """Scalars per neuron, written out by hand per family (not via the adapter)."""
    if component == "ffn":
        if family == "bloom":
            return 2 * d + 1  # dense_h_to_4h row + its bias entry, dense_4h_to_h column
        return (3 if train_gate else 2) * d  # gate row, up row, down column (no MLP biases)
    return d + (1 if family in ("qwen2", "bloom") else 0)  # q/k/v row (+ bias entry)


@pytest.mark.parametrize("family", FAMILIES)
def test_hooks_equal_model_with_replaced_slices(family):
    model = tiny_model(family, dtype=torch.float64)
    adapter = get_adapter(model)
    inputs = batch(model.config.vocab_size)
    base_logits = logits(model, inputs)
    replaced = copy.deepcopy(model)
    with attach_sparse(adapter, selection(adapter)) as sparse:
        assert torch.equal(logits(model, inputs), base_logits)  # values == base: bit-identical
        g = torch.Generator().manual_seed(5)
        with torch.no_grad():
            for s in sparse.slices:
                s.values.add_(0.3 * torch.randn(s.values.shape, generator=g, dtype=s.values.dtype))
        hooked = logits(model, inputs)
    params = dict(replaced.named_parameters())
    with torch.no_grad():
        for s in sparse.slices:
            params[s.name].index_copy_(s.dim, s.index, s.values)
    assert not torch.equal(hooked, base_logits)
    torch.testing.assert_close(hooked, logits(replaced, inputs), rtol=0, atol=1e-11)
    assert torch.equal(logits(model, inputs), base_logits)  # hooks removed, base untouched


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("checkpointing", [False, True])
def test_sparse_gradient_is_the_full_gradient_restricted(family, checkpointing):
    model = tiny_model(family, dtype=torch.float64)
    model.train()
    inputs = batch(model.config.vocab_size)
    labels = inputs["input_ids"].masked_fill(inputs["attention_mask"] == 0, -100)
    full = copy.deepcopy(model)
    full(**inputs, labels=labels).loss.backward()
    full_grads = {n: p.grad for n, p in full.named_parameters()}
    adapter = get_adapter(model)
    if checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    with attach_sparse(adapter, selection(adapter, p=0.3)) as sparse:
        model(**inputs, labels=labels).loss.backward()
        assert all(p.grad is None for p in model.parameters())
        for s in sparse.slices:
            want = full_grads[s.name].index_select(s.dim, s.index)
            torch.testing.assert_close(s.values.grad, want, rtol=1e-9, atol=1e-12)
            assert s.values.grad.abs().sum() > 0


@pytest.mark.parametrize("family", ["llama", "qwen2", "bloom"])
def test_training_changes_only_the_selected_slices(family, tokenizer):
    model = tiny_model(family, dtype=torch.float64, vocab_size=len(tokenizer))
    base = copy.deepcopy(model)
    adapter = get_adapter(model)
    sel = selection(adapter)
    result = finetune(adapter, tokenizer, TEXTS, FinetuneSettings(**FAST), neuron_set(sel))
    for (name, p), (_, q) in zip(model.named_parameters(), base.named_parameters(), strict=True):
        assert torch.equal(p, q), f"base parameter {name} was modified"
        assert not p.requires_grad
    d = model.config.hidden_size
    want = sum(int(sel[c].sum()) * expected_slice_size(family, c, d) for c in COMPONENTS)
    assert result.summary["n_trainable"] == result.delta.n_values == want
    assert result.summary["final_loss"] < result.summary["first_loss"]

    trained = apply_delta(copy.deepcopy(base), result.delta)
    in_slice = {n: torch.zeros_like(p, dtype=torch.bool) for n, p in base.named_parameters()}
    for name, (_, dim, index) in slice_plan(get_adapter(base), sel).items():
        in_slice[name].index_fill_(dim, index, True)
    n_changed = 0
    for (name, p), (_, q) in zip(trained.named_parameters(), base.named_parameters(), strict=True):
        changed = p != q
        assert not (changed & ~in_slice[name]).any(), f"{name} changed outside the selected slices"
        n_changed += int(changed.sum())
    assert n_changed >= 0.95 * want  # (nearly) every selected scalar moved at lr 1e-2


def test_trainer_state_scales_with_the_selection(tokenizer):
    model = tiny_model("qwen2", dtype=torch.float64, vocab_size=len(tokenizer))
    adapter = get_adapter(model)
    sel = selection(adapter, p=0.1)
    settings = FinetuneSettings(**FAST)
    rows = torch.randint(3, len(tokenizer), (4, 16), generator=torch.Generator().manual_seed(0))
    trainer = FinetuneTrainer(adapter, sel, settings, total_steps=2, pad_id=0)
    trainer.step(rows)
    n = trainer.n_trainable()
    assert n == sum(int(sel[c].sum()) * expected_slice_size("qwen2", c, 32) for c in COMPONENTS)
    opt_params = [p for g in trainer.optimizer.param_groups for p in g["params"]]
    assert {id(p) for p in opt_params} == {id(s.values) for s in trainer.sparse.slices}
    moments = sum(
        st[k].numel() for st in trainer.optimizer.state.values() for k in ("exp_avg", "exp_avg_sq")
    )
    assert moments == 2 * n
    sparse_bytes = trainer.state_bytes()
    assert sparse_bytes["trainable"] == sparse_bytes["gradient"] == 8 * n
    trainer.close()
    full = FinetuneTrainer(adapter, None, settings, total_steps=2, pad_id=0)
    full.step(rows)
    n_all = sum(p.numel() for p in model.parameters())
    assert full.state_bytes()["trainable"] == full.state_bytes()["gradient"] == 8 * n_all
    assert sparse_bytes["optimizer"] < 0.2 * full.state_bytes()["optimizer"]
    full.close()


def test_gate_stays_frozen_with_the_released_code_switch(tokenizer):
    model = tiny_model("llama", dtype=torch.float64, vocab_size=len(tokenizer))
    adapter = get_adapter(model)
    sel = selection(adapter)
    settings = FinetuneSettings(**FAST, train_gate=False)
    result = finetune(adapter, tokenizer, TEXTS, settings, neuron_set(sel))
    assert not any("gate_proj" in n for n in result.delta.slices)
    assert any("up_proj" in n for n in result.delta.slices)
    want = sum(
        int(sel[c].sum()) * expected_slice_size("llama", c, 32, train_gate=False)
        for c in COMPONENTS
    )
    assert result.delta.n_values == want


def test_runs_are_byte_identical_for_a_seed(tokenizer):
    deltas = []
    for _ in range(2):
        model = tiny_model("llama", dtype=torch.float32, vocab_size=len(tokenizer))
        adapter = get_adapter(model)
        r = finetune(
            adapter,
            tokenizer,
            TEXTS,
            FinetuneSettings(**FAST, seed=3),
            neuron_set(selection(adapter)),
        )
        deltas.append(serialize(delta_tensors(r.delta), r.delta.meta))
    assert deltas[0] == deltas[1]
    model = tiny_model("llama", dtype=torch.float32, vocab_size=len(tokenizer))
    adapter = get_adapter(model)
    other = finetune(
        adapter, tokenizer, TEXTS, FinetuneSettings(**FAST, seed=4), neuron_set(selection(adapter))
    )
    assert serialize(delta_tensors(other.delta), other.delta.meta) != deltas[0]


def test_empty_selection_trains_nothing_and_says_so(tokenizer, caplog):
    model = tiny_model("llama", dtype=torch.float64, vocab_size=len(tokenizer))
    base = copy.deepcopy(model)
    adapter = get_adapter(model)
    empty = {
        c: torch.zeros(adapter.n_layers, adapter.n_units(c), dtype=torch.bool) for c in COMPONENTS
    }
    with caplog.at_level(logging.WARNING, logger="mwork.finetune.run"):
        result = finetune(adapter, tokenizer, TEXTS, FinetuneSettings(**FAST), neuron_set(empty))
    assert "no neurons to train" in caplog.text
    assert result.delta.empty and result.delta.n_values == 0 and result.summary["trained"] is False
    apply_delta(model, result.delta)
    assert all(
        torch.equal(p, q) for p, q in zip(model.parameters(), base.parameters(), strict=True)
    )
    # a region restriction that leaves nothing is empty too
    sel = selection(adapter)
    only_g = {
        c: s & (torch.arange(adapter.n_layers) == 0)[:, None] for c, s in sel.items()
    }  # layer 0 = U
    r = finetune(
        adapter,
        tokenizer,
        TEXTS,
        FinetuneSettings(**FAST, regions=("G",), n1=1, n2=1),
        neuron_set(only_g),
    )
    assert r.delta.empty
    with pytest.raises(MworkError, match="empty"):
        finetune(
            adapter,
            tokenizer,
            TEXTS,
            FinetuneSettings(**FAST, allow_empty=False),
            neuron_set(empty),
        )


def test_full_mode_trains_everything_and_its_delta_reproduces_the_model(tokenizer):
    model = tiny_model("qwen2", dtype=torch.float64, vocab_size=len(tokenizer))
    base = copy.deepcopy(model)
    adapter = get_adapter(model)
    result = finetune(adapter, tokenizer, TEXTS, FinetuneSettings(**FAST, mode="full"))
    assert result.delta.mode == "full"
    assert result.summary["n_trainable"] == sum(p.numel() for p in base.parameters())
    changed = [
        n
        for (n, p), (_, q) in zip(model.named_parameters(), base.named_parameters(), strict=True)
        if not torch.equal(p, q)
    ]
    assert len(changed) == len(list(base.parameters()))
    rebuilt = apply_delta(base, result.delta)
    assert all(
        torch.equal(p, q) for p, q in zip(rebuilt.parameters(), model.parameters(), strict=True)
    )


def test_neurons_of_another_model_are_refused(tokenizer):
    model = tiny_model("llama", dtype=torch.float64, vocab_size=len(tokenizer))
    adapter = get_adapter(model)
    ns = neuron_set(selection(adapter))
    ns.meta["model_fingerprint"] = "0" * 64
    with pytest.raises(MworkError, match="another model"):
        finetune(adapter, tokenizer, TEXTS, FinetuneSettings(**FAST), ns)
    other = tiny_model(
        "llama", dtype=torch.float64, vocab_size=len(tokenizer), intermediate_size=40
    )
    with pytest.raises(MworkError, match="does not fit"):
        finetune(
            get_adapter(other),
            tokenizer,
            TEXTS,
            FinetuneSettings(**FAST),
            neuron_set(selection(adapter)),
        )


def test_checkpointing_gives_the_same_delta_and_bf16_autocast_trains(tokenizer):
    deltas = []
    for ckpt in (False, True):
        model = tiny_model("bloom", dtype=torch.float64, vocab_size=len(tokenizer))
        adapter = get_adapter(model)
        settings = FinetuneSettings(**FAST, gradient_checkpointing=ckpt)
        deltas.append(
            finetune(adapter, tokenizer, TEXTS, settings, neuron_set(selection(adapter))).delta
        )
    for name, s in deltas[0].slices.items():
        torch.testing.assert_close(deltas[1].slices[name].values, s.values, rtol=0, atol=1e-10)
    model = tiny_model("llama", dtype=torch.float32, vocab_size=len(tokenizer))
    adapter = get_adapter(model)
    r = finetune(
        adapter,
        tokenizer,
        TEXTS,
        FinetuneSettings(**FAST, precision="bf16"),
        neuron_set(selection(adapter)),
    )
    assert r.summary["final_loss"] < r.summary["first_loss"]
    assert all(s.values.dtype == torch.float32 for s in r.delta.slices.values())


def test_gate_rows_of_a_fused_gate_up_stay_frozen(tokenizer):
    """Phi-3: the gate rows live in the fused gate_up_proj; train_gate=False trains only the up rows."""
    model = tiny_model("phi3", dtype=torch.float64, vocab_size=len(tokenizer))
    adapter = get_adapter(model)
    sel = {
        c: torch.zeros(adapter.n_layers, adapter.n_units(c), dtype=torch.bool) for c in COMPONENTS
    }
    sel["ffn"][0, [1, 3]] = True
    base = adapter.mlp(0).gate_up_proj.weight.detach().clone()
    settings = FinetuneSettings(**FAST, train_gate=False)
    result = finetune(adapter, tokenizer, TEXTS, settings, neuron_set(sel))
    (name,) = [n for n in result.delta.slices if "gate_up_proj" in n]
    rows = result.delta.slices[name].index.tolist()
    assert rows == [adapter.d_ffn + 1, adapter.d_ffn + 3]  # the up rows only
    apply_delta(model, result.delta, check_fingerprint=False)
    after = adapter.mlp(0).gate_up_proj.weight.detach()
    assert torch.equal(after[: adapter.d_ffn], base[: adapter.d_ffn])  # gate half untouched
