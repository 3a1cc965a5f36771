"""The configuration of a synthesis run: its knobs, the budget presets, and the one way to read them.

``SynthesisConfig.from_toml`` (a ``[methods.<label>]`` table) and ``SynthesisConfig.from_args`` (the
``synthesize`` command's flags, through ``FLAGS``) go through the same reader, so a TOML key and the
flag that sets it cannot drift apart; ``to_table`` writes a config back as the table that reads to it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from regenesis.errors import BadInput
from regenesis.optimize.filters import FilterOptions
from regenesis.optimize.methods import METHOD_NAMES, ReGenesisBudget
from regenesis.settings import Hints, check, dotted, schema

AT_LEAST_ONE = {"minimum": 1}


@dataclass
class SynthesisConfig:
    """The knobs of a synthesis run. ``generations`` is the budget of generations per problem that
    all methods share; ``regenesis`` sets ReGenesis's sets explicitly instead. The hinted pass spends
    ``hint_generations`` at ``hint_temperature`` (None: the first pass's budget and temperature)."""

    method: str = "regenesis"
    generations: int | None = field(default=None, metadata=AT_LEAST_ONE)
    regenesis: ReGenesisBudget | None = None
    max_kept: int = 5
    hint_pass: bool = True
    hint_generations: int | None = None
    hint_temperature: float | None = None
    label_free: bool = False
    temperature: float = 0.8
    top_p: float | None = 0.95
    num_threads: int = field(default=2, metadata=AT_LEAST_ONE)
    filters: FilterOptions = field(default_factory=FilterOptions)

    @classmethod
    def from_toml(cls, table: dict, where: str = "methods", num_threads: int = 2) -> SynthesisConfig:
        """A ``[methods.<label>]`` table: SynthesisConfig's fields, ``preset``, ReGenesisBudget's fields
        in the table itself and FilterOptions' in its ``filters`` table. The thread count is the
        caller's (it changes how fast, not what). Errors name the key under ``where``."""
        return replace(read(table, TOML_KEYS, dotted(where), where), num_threads=num_threads)

    @classmethod
    def from_args(cls, args) -> SynthesisConfig:
        """The ``synthesize`` command's flags (an argparse namespace), read as the TOML keys ``FLAGS`` names."""
        table: dict[str, Any] = {}
        for flag, key in FLAGS.items():
            value = getattr(args, flag[2:].replace("-", "_"))
            if value is None or value is False:  # not given: the preset's value stands
                continue
            value = False if flag.startswith("--no-") else value
            if key.startswith("filters."):
                table.setdefault("filters", {})[key.removeprefix("filters.")] = value
            else:
                table[key] = value
        flag_of = {key: flag for flag, key in FLAGS.items()}
        return read(table, {**TOML_KEYS, "num_threads": NUM_THREADS}, lambda key: flag_of.get(key, key), "synthesize")

    def to_table(self) -> dict[str, Any]:
        """This config as a ``[methods.<label>]`` table (``from_toml`` reads it back to an equal config)."""
        table = {name: value for name, value in asdict(self).items() if name not in ("regenesis", "filters", "num_threads")}
        if self.regenesis is not None:
            table.update(asdict(self.regenesis))
        defaults = asdict(FilterOptions())
        filters = {name: value for name, value in asdict(self.filters).items() if value != defaults[name]}
        return {**table, "filters": filters} if filters else table


# The keys of a [methods.<label>] table: the budget's fields sit in the table itself and the filters in
# their own table; the thread count is not a key (the experiment's, or the --num-threads flag).
TOML_KEYS: Hints = {**schema(SynthesisConfig, without=("regenesis", "filters", "num_threads"), minimum=0),
                    **schema(ReGenesisBudget, minimum=0), "paths_per_set": (int, 1),
                    "preset": (str, None), "filters": (dict, None)}
NUM_THREADS = schema(SynthesisConfig)["num_threads"]
BUDGET_KEYS = tuple(f.name for f in fields(ReGenesisBudget))

# The synthesize command's flags and the keys they set; a --no-... flag sets its key to false.
FLAGS = {"--method": "method", "--preset": "preset", "--generations": "generations",
         "--selections": "selections", "--singles": "singles", "--paths-per-set": "paths_per_set",
         "--max-kept": "max_kept", "--no-hint": "hint_pass", "--hint-generations": "hint_generations",
         "--hint-temperature": "hint_temperature", "--label-free": "label_free",
         "--temperature": "temperature", "--top-p": "top_p", "--num-threads": "num_threads",
         "--no-arithmetic-check": "filters.arithmetic", "--no-form-check": "filters.form",
         "--no-number-support-check": "filters.number_support",
         "--no-choice-support-check": "filters.choice_support",
         "--no-hinted-derivation-check": "filters.hinted_derivation", "--judge": "filters.judge_model"}


def read(table: dict, keys: Hints, name: Callable[[str], str], where: str) -> SynthesisConfig:
    """The SynthesisConfig a table of ``keys`` sets, on top of its preset; ``name`` names a key in an error."""
    settings = check(table, keys, name, where)
    method = settings.setdefault("method", "regenesis")
    if method not in METHOD_NAMES:
        raise BadInput(f"{name('method')}: {method!r} is not one of {', '.join(METHOD_NAMES)}")
    if settings.get("label_free") and method != "regenesis":
        raise BadInput(f"{name('label_free')} applies to method regenesis (lmsi is label-free already)")
    preset_name = settings.pop("preset", "default")
    if preset_name not in PRESETS:
        raise BadInput(f"{name('preset')}: unknown preset {preset_name!r}; choose one of {', '.join(PRESETS)}")
    filters = FilterOptions(**check(settings.pop("filters", {}), schema(FilterOptions, minimum=0),
                                    lambda key: name(f"filters.{key}"), name("filters")))
    budget = {key: settings.pop(key) for key in BUDGET_KEYS if key in settings}
    if budget and "generations" in settings:
        raise BadInput(f"{name('generations')} and {'/'.join(map(name, budget))} set the same budget: give one")
    if budget:
        settings["regenesis"] = replace(PRESETS[preset_name].regenesis or ReGenesisBudget(), **budget)
    return preset(preset_name, filters=filters, **settings)


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
