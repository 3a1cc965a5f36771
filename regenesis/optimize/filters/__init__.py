"""Quality filters: keep only the reasoning paths that support their answer.

Answer matching alone keeps lucky guesses: a small model often reaches the gold number through false
arithmetic, or names the right option with no reason at all, and a row that teaches a guess is worse
than no row. Each check below is one module holding one class with a ``name`` and a
``check(path, example) -> Verdict``; a failed verdict's ``reason`` says what was wrong, and the run's
report counts failures under the check's name. ``build_filters`` lists the checks ``FilterOptions``
turns on, cheapest first, and ``check_path`` runs them in that order up to the first failure, so the
judge is only asked about paths every cheap check kept. Adding a check is adding a module, an option
and one entry in that list.

``form`` (``form.py``) rejects a path that does not have the shape of a training row: no reasoning
before the answer (too few words or numbers, echoes of the prompt's format, stray symbols), reasoning
that stops mid-sentence at the token budget, no final answer on the last line or a different or
repeated answer before it, degenerate repetition, more than the length limit, a trace of the prompt's
hint or guidelines, or a hostile shape (``hostile.py``: control characters, console markup, absurd
nesting, power bombs, secrets). A row pairs the path with the plain question, so whatever the path
shows, the tuned model learns to write.

``arithmetic`` (``arithmetic.py``, with the bounded parser in ``arithmetic_parser.py``) rejects a path
with a false computation: every one it states ("16 - 3 - 4 = 9", "12 x 6 is 72", "20% of 500 = 100")
is recomputed from numbers and + - * / ^ (never ``eval``), a result rounded to the decimals it shows
allowed. A false step that lands on the gold answer would teach false arithmetic.

``number_support`` (``number_support.py``) rejects a number answer that is only announced: its value
must appear in the reasoning besides the final statement. A path that computes 50 and then answers 10,
or never mentions its answer before the last line, is a guess.

``choice_support`` (``choice_support.py``) rejects a multiple-choice or yes/no answer that does not
follow from stated reasons: named without reasons of its own, contradicted by another stated answer
or by its own option-by-option analysis, endorsed together with another option, or concluded for a
different one. One option in four, or one answer in two, matches the gold by chance.

``judge`` (``judge.py``, off unless a judge model is given, as in the paper's reference code): a model
reads the question, the path and the gold answer and rejects the path when the reasoning does not
support that answer; label-free, it is shown no gold answer and judges whether the path earns its own.
Its verdict and rationale become the row's provenance.

Hinted paths (``hinted.py``) meet two more checks, which the bootstrap loop runs before these because
only it knows a path was hinted: ``hint_leak`` rejects a path that refers to the answer it was given
("the correct answer is 18", "to reach the given answer") and ``derives_answer`` requires a hinted
number path to compute its answer rather than state it. The training row pairs the path with the plain
question, where there is no hint to lean on.

A path is untrusted model output. Every check reads at most ``MAX_PATH_CHARS`` characters (a longer
path fails with a reason), the arithmetic parser reads a bounded nesting depth and side length and
computes only with floats and small powers, and every pattern matches in linear time. A check that
fails all the same turns into a failed verdict (``checker_error: <type>``) instead of ending the run.
``reading.py`` holds how the checks read a path: its logical lines, its answer statements and its
final answer.
"""

from regenesis.optimize.filters.arithmetic import ArithmeticFilter, power_bombs, stated_computations
from regenesis.optimize.filters.choice_support import ChoiceSupportFilter
from regenesis.optimize.filters.form import FormFilter, degenerate_repetition
from regenesis.optimize.filters.hinted import derives_answer, hint_leak, mentions_hint
from regenesis.optimize.filters.hostile import hostile_shape
from regenesis.optimize.filters.judge import JudgeFilter
from regenesis.optimize.filters.number_support import NumberSupportFilter
from regenesis.optimize.filters.pipeline import FilterOptions, build_filters, check_path
from regenesis.optimize.filters.reading import final_answer
from regenesis.optimize.filters.verdict import PathFilter, Verdict

__all__ = ["ArithmeticFilter", "ChoiceSupportFilter", "FilterOptions", "FormFilter", "JudgeFilter",
           "NumberSupportFilter", "PathFilter", "Verdict", "build_filters", "check_path", "degenerate_repetition",
           "derives_answer", "final_answer", "hint_leak", "hostile_shape", "mentions_hint", "power_bombs",
           "stated_computations"]
