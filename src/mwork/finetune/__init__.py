"""Neuron fine-tuning (paper §4): train only a language's neurons, store the change as a delta.

sparse   trainable slices of the selected neurons, attached to a frozen model by hooks
delta    the delta safetensors file: save / load / apply to a base model / merge to a HF dir
train    FinetuneSettings, the training loop, `finetune_to_file`
data     nested document samples (N = 100 ⊂ 200 ⊂ 400 ⊂ 800), Wikipedia source
cli      the `mwork finetune train|merge` subcommands
"""
