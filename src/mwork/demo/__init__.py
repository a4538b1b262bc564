"""The embedded demo: a seeded multilingual toy world, its corpora and benchmarks, and a tiny model.

Modules: `world` (entities and facts), `languages` (lexicons, templates, renderer), `documents`
(language-free document plans), `examples` (task examples), `prompts` (task prompt formats),
`benchmarks` (rows in the real datasets' schemas), `mixture` (training mixture), `emit` (files),
`train` (tokenizer and model training), `evaluate` (perplexity and task accuracy).
"""
