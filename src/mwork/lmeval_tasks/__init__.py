"""lm-eval task templates and hook functions of the mwork benchmarks (MGSM, XQuAD, X-CSQA, XLSum).

The `*_template.yaml` files carry no `task:` key: `mwork.tasks` writes one concrete YAML per
(task, language, variant, data source) that `include:`s a template by absolute path. Functions are
referenced as `!function mwork.lmeval_tasks.utils.<name>`, which lm-eval imports by module name, so
the generated YAMLs work from any directory.
"""
