"""Neuron fine-tuning (paper §4): train only a language's neurons, store the change as a delta.

settings  FinetuneSettings: the hyperparameters (config section `finetune`)
neurons   which neurons a sparse run trains (modes ls / random / full, restrictions)
data      nested document samples (N = 100 ⊂ 200 ⊂ 400 ⊂ 800)
rows      tokenized documents as PAD-filled training rows (packed or one per row)
sparse    trainable slices of the selected neurons, attached to a frozen model by hooks
trainer   FinetuneTrainer: optimizer, schedule, one step with gradient accumulation
run       `finetune`: one run from documents to delta (summary, timing)
train     `finetune_to_file`: the stage's file entry (inputs checked, model loaded, delta written)
delta     the delta safetensors file: save / load / apply to a base model / merge to a HF dir
deltacheck the delta file's invariants (indices, counts, finite values), on load and save
cli       the `mwork finetune train|merge` subcommands
"""
