"""regenesis: ReGenesis (arXiv 2410.02108) as a DSPy program, its baselines, and a TRL distillation stage.

Start with ``regenesis.models.resolve_lm``, ``regenesis.programs.ReGenesis``,
``regenesis.optimize.bootstrap.synthesize``, ``regenesis.finetune.finetune`` and
``regenesis.evals.evaluate.evaluate``; or the ``regenesis`` command line.
"""

__version__ = "0.1.0"
