"""The configuration of a synthesis run: its knobs and the budget presets."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from regenesis.optimize.filters import FilterOptions
from regenesis.optimize.methods import ReGenesisBudget


@dataclass
class SynthesisConfig:
    """The knobs of a synthesis run. ``generations`` is the budget of generations per problem that
    all methods share; ``regenesis`` sets ReGenesis's sets explicitly instead. The hinted pass spends
    ``hint_generations`` at ``hint_temperature`` (None: the first pass's budget and temperature)."""

    method: str = "regenesis"
    generations: int | None = None
    regenesis: ReGenesisBudget | None = None
    max_kept: int = 5
    hint_pass: bool = True
    hint_generations: int | None = None
    hint_temperature: float | None = None
    label_free: bool = False
    temperature: float = 0.8
    top_p: float | None = 0.95
    num_threads: int = 2
    filters: FilterOptions = field(default_factory=FilterOptions)


PRESETS = {
    # Cheap enough for a laptop: 4 guideline sets per problem (14 generations, and as many again in the
    # hinted pass of a problem the first pass leaves unsolved).
    "default": SynthesisConfig(),
    # The reference budget: 20 sampled selections plus every seed guideline alone (singles are capped
    # at the size of the library), sampled at 1.2 / 0.9; the hinted pass is smaller and cooler (about
    # 100 generations at 0.85).
    "paper": SynthesisConfig(regenesis=ReGenesisBudget(selections=20, singles=10_000, paths_per_set=1),
                             temperature=1.2, top_p=0.9, max_kept=5, hint_generations=100, hint_temperature=0.85),
}


def preset(name: str, **overrides) -> SynthesisConfig:
    """The preset ``name`` with the overrides that are not None. A shared budget (``generations``)
    replaces the preset's own ReGenesis sets, so equal-budget comparisons are equal."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if "generations" in overrides and "regenesis" not in overrides:
        overrides["regenesis"] = None
    return replace(PRESETS[name], **overrides)
