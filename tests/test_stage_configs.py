"""One reader per stage configuration: a command-line flag and the TOML key it stands for set the same
field, an unknown key is refused by its name, and an experiment config survives being written back."""

import argparse
import tomllib
from pathlib import Path

import pytest

from regenesis.cli import add_model_options, build_parser, main
from regenesis.cli.tasks import add_task_options
from regenesis.errors import BadInput
from regenesis.experiment import EvalSection, Experiment, ExperimentConfig, TrainSection
from regenesis.finetune import FinetuneConfig
from regenesis.finetune.train import FLAGS as FINETUNE_FLAGS
from regenesis.optimize.config import FLAGS as SYNTHESIS_FLAGS
from regenesis.optimize.config import TOML_KEYS, SynthesisConfig
from regenesis.optimize.filters import FilterOptions
from regenesis.settings import schema

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

# For every flag of `synthesize` that sets a synthesis setting: its command-line words, and the table of a
# [methods.<label>] section that says the same.
SYNTHESIS_CASES = {
    "--method": (["--method", "star"], {"method": "star"}),
    "--preset": (["--preset", "paper"], {"preset": "paper"}),
    "--generations": (["--generations", "4"], {"generations": 4}),
    "--selections": (["--selections", "3"], {"selections": 3}),
    "--singles": (["--singles", "0"], {"singles": 0}),
    "--paths-per-set": (["--paths-per-set", "2"], {"paths_per_set": 2}),
    "--max-kept": (["--max-kept", "2"], {"max_kept": 2}),
    "--no-hint": (["--no-hint"], {"hint_pass": False}),
    "--hint-generations": (["--hint-generations", "3"], {"hint_generations": 3}),
    "--hint-temperature": (["--hint-temperature", "0.6"], {"hint_temperature": 0.6}),
    "--label-free": (["--label-free"], {"label_free": True}),
    "--temperature": (["--temperature", "0.5"], {"temperature": 0.5}),
    "--top-p": (["--top-p", "0.7"], {"top_p": 0.7}),
    "--num-threads": (["--num-threads", "5"], {}),  # the thread count: from_toml's argument, not a key
    "--no-arithmetic-check": (["--no-arithmetic-check"], {"filters": {"arithmetic": False}}),
    "--no-form-check": (["--no-form-check"], {"filters": {"form": False}}),
    "--no-number-support-check": (["--no-number-support-check"], {"filters": {"number_support": False}}),
    "--no-choice-support-check": (["--no-choice-support-check"], {"filters": {"choice_support": False}}),
    "--no-hinted-derivation-check": (["--no-hinted-derivation-check"], {"filters": {"hinted_derivation": False}}),
    "--judge": (["--judge", "local/smollm2-135m"], {"filters": {"judge_model": "local/smollm2-135m"}}),
}
# The synthesize flags that are not synthesis settings besides the model's and the task's: where the rows
# go, and what an experiment sets in its [train] section (max_tokens, guidelines) and top level (ray).
NOT_SYNTHESIS_SETTINGS = {"--out", "--max-tokens", "--guidelines", "--ray", "--help"}


def command(name: str) -> argparse.ArgumentParser:
    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return commands.choices[name]


def flags(parser: argparse.ArgumentParser) -> set[str]:
    return {option for action in parser._actions for option in action.option_strings if option.startswith("--")}


def synthesize_args(*words: str) -> argparse.Namespace:
    return command("synthesize").parse_args(["--task", "gsm8k-sample", "--out", "unused", *words])


def test_every_synthesize_flag_is_a_synthesis_setting_or_named_as_not_one():
    shared = argparse.ArgumentParser()
    add_model_options(shared)
    add_task_options(shared)
    assert set(SYNTHESIS_CASES) == set(SYNTHESIS_FLAGS)
    assert flags(command("synthesize")) == set(SYNTHESIS_FLAGS) | NOT_SYNTHESIS_SETTINGS | flags(shared)


def test_every_key_of_a_methods_table_has_its_flag_but_the_filters_fine_print():
    keys = set(TOML_KEYS) - {"filters"} | {f"filters.{name}" for name in schema(FilterOptions)}
    assert keys - set(SYNTHESIS_FLAGS.values()) == {"filters.max_chars", "filters.hint_phrases"}


@pytest.mark.parametrize("flag", list(SYNTHESIS_CASES))
def test_each_synthesize_flag_sets_the_field_its_toml_key_sets(flag):
    words, table = SYNTHESIS_CASES[flag]
    method = ["--method", "regenesis"] if flag == "--label-free" else []  # the one method that takes it
    from_args = SynthesisConfig.from_args(synthesize_args(*method, *words))
    threads = 5 if flag == "--num-threads" else 2
    assert from_args == SynthesisConfig.from_toml(table, where="methods.x", num_threads=threads)
    assert from_args != SynthesisConfig.from_toml({}, where="methods.x")  # the flag is not ignored by both


def test_flags_and_keys_together_give_equal_configs():
    args = synthesize_args("--method", "star", "--generations", "4", "--no-hint", "--temperature", "0.5",
                           "--max-kept", "3", "--no-form-check", "--num-threads", "3")
    table = {"method": "star", "generations": 4, "hint_pass": False, "temperature": 0.5, "max_kept": 3,
             "filters": {"form": False}}
    config = SynthesisConfig.from_args(args)
    assert config == SynthesisConfig.from_toml(table, where="methods.star", num_threads=3)
    assert (config.generations, config.hint_pass, config.temperature, config.filters.form) == (4, False, 0.5, False)
    budget = SynthesisConfig.from_args(synthesize_args("--preset", "paper", "--selections", "3"))
    assert budget == SynthesisConfig.from_toml({"preset": "paper", "selections": 3}, where="methods.regenesis")
    assert (budget.regenesis.selections, budget.regenesis.singles) == (3, 10_000)  # the rest: the preset's


def test_the_experiment_reads_its_methods_with_the_same_reader(tmp_path):
    path = tmp_path / "x.toml"
    path.write_text('num_threads = 3\n[train]\ntask = "gsm8k-sample"\n[eval]\ntasks = ["gsm8k-sample"]\n'
                    '[methods.star]\ngenerations = 4\nhint_pass = false\ntemperature = 0.5\n')
    args = synthesize_args("--method", "star", "--generations", "4", "--no-hint", "--temperature", "0.5",
                           "--num-threads", "3")
    assert ExperimentConfig.load(path).methods["star"] == SynthesisConfig.from_args(args)


def test_every_finetune_flag_sets_the_field_its_toml_key_sets():
    parser = command("finetune")
    assert flags(parser) == {f"--{name.replace('_', '-')}" for name in FINETUNE_FLAGS} | {
        "--data", "--base", "--out", "--resume", "--help"}
    args = parser.parse_args(["--data", "d", "--out", "o", "--lora", "--epochs", "1.5", "--lr", "3e-4",
                              "--max-length", "256", "--batch-size", "2", "--grad-accum", "3", "--max-steps", "7",
                              "--precision", "fp32", "--save-steps", "9", "--gradient-checkpointing",
                              "--seed", "4", "--report-to", "none"])
    table = {"lora": True, "epochs": 1.5, "lr": 3e-4, "max_length": 256, "batch_size": 2, "grad_accum": 3,
             "max_steps": 7, "precision": "fp32", "save_steps": 9, "gradient_checkpointing": True, "seed": 4}
    config = FinetuneConfig.from_args(args)
    assert config == FinetuneConfig.from_toml(table) != FinetuneConfig()
    assert {name for name in FINETUNE_FLAGS if getattr(config, name) != getattr(FinetuneConfig(), name)} == set(table)


@pytest.mark.parametrize(("read", "named"), [
    (lambda: SynthesisConfig.from_toml({"temprature": 0.5}, where="methods.star"),
     "methods.star.temprature: unknown key (did you mean temperature?)"),
    (lambda: SynthesisConfig.from_toml({"filters": {"judge": "x"}}, where="methods.star"),
     "methods.star.filters.judge: unknown key"),
    (lambda: SynthesisConfig.from_toml({"generations": 0}, where="methods.star"),
     "methods.star.generations: must be at least 1, got 0"),
    (lambda: SynthesisConfig.from_toml({"generations": 4, "singles": 1}, where="methods.r"),
     "methods.r.generations and methods.r.singles set the same budget"),
    (lambda: FinetuneConfig.from_toml({"epoch": 2}), "finetune.epoch: unknown key (did you mean epochs?)"),
    (lambda: FinetuneConfig.from_toml({"lora": "yes"}), "finetune.lora: expected true or false, got 'yes'"),
], ids=["key", "filter-key", "minimum", "two-budgets", "finetune-key", "finetune-type"])
def test_an_unknown_key_or_bad_value_is_refused_by_its_name(read, named):
    with pytest.raises(BadInput) as refused:
        read()
    assert str(refused.value).startswith(named) and "\n" not in str(refused.value)


@pytest.mark.parametrize(("words", "named"), [
    (["--generations", "4", "--selections", "1"], "error: --generations and --selections set the same budget"),
    (["--generations", "0"], "error: --generations: must be at least 1, got 0"),
    (["--method", "star", "--label-free"], "error: --label-free applies to method regenesis"),
])
def test_a_bad_synthesize_flag_exits_2_in_one_line_naming_the_flag(tmp_path, capsys, words, named):
    out = tmp_path / "out"
    assert main(["synthesize", "--task", "gsm8k-sample", "--out", str(out), *words]) == 2
    error = " ".join(capsys.readouterr().err.split())
    assert error.startswith(named) and not out.exists()


@pytest.mark.parametrize("name", ["quickstart.toml", "paper.toml", "hosted.toml"])
def test_an_experiment_config_written_back_loads_to_an_equal_config(name):
    config = ExperimentConfig.load(EXAMPLES / name)
    assert ExperimentConfig.from_toml(tomllib.loads(config.to_toml()), name=config.name) == config


def test_a_python_config_that_no_toml_file_can_hold_is_refused_before_a_run(tmp_path):
    config = ExperimentConfig(train=TrainSection(task="gsm8k-sample"), eval=EvalSection(tasks=["gsm8k-sample"]),
                              methods={"star": SynthesisConfig(method="star", generations=2, top_p=None)})
    with pytest.raises(BadInput, match="ExperimentConfig: a setting has no TOML form"):
        Experiment(config, tmp_path / "out")
    assert not (tmp_path / "out").exists()
