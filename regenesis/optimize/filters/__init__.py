"""Quality filters: keep only the reasoning paths that support their answer.

Answer matching alone keeps lucky guesses: a small model often reaches the gold number through false
arithmetic, or names the right option with no reason at all. Every method's bootstrap loop runs these
filters on the paths that passed answer matching, cheap ones first:

- ``form``: one final-answer line, at the end; no degenerate repetition; within the length limit; no
  trace of the prompt's hint or guidelines;
- ``arithmetic``: every computation the path states ("16 - 3 - 4 = 9", "12 x 6 is 72", "20% of 500 =
  100") is checked with a small parser of numbers and + - * / ^ (never ``eval``);
- ``choice_support``: for multiple-choice and yes/no tasks, the choice follows from stated reasons
  instead of being named, contradicted or argued for equally with another option;
- ``judge`` (optional, as in the paper's reference code): a model reads question, path and gold answer
  and decides whether the reasoning supports the answer; its verdict and rationale become provenance.
  Label-free, the judge is not shown any gold answer: it decides whether the path earns its own.

``check_path`` runs them in order and stops at the first failure, so the judge is only asked about
paths every cheap filter kept.

A path is untrusted model output. Every check reads at most ``MAX_PATH_CHARS`` characters (a longer
path fails with a reason), parses at most ``_MAX_PARSE_DEPTH`` levels of nesting and
``_MAX_SIDE_TOKENS`` tokens a side of an equality, computes only with floats and small powers, and
matches patterns in linear time; ``form`` rejects the hostile shapes themselves (control characters,
console markup, absurd nesting, power bombs, secrets). A checker that fails all the same turns
into a failed verdict (``checker_error: <type>``) instead of ending the run.
"""


from regenesis.optimize.filters.arithmetic import ArithmeticFilter, power_bombs, stated_computations
from regenesis.optimize.filters.choice_support import ChoiceSupportFilter
from regenesis.optimize.filters.form import FormFilter, degenerate_repetition, hostile_shape
from regenesis.optimize.filters.hinted import derives_answer, hint_leak, mentions_hint
from regenesis.optimize.filters.judge import JudgeFilter
from regenesis.optimize.filters.number_support import NumberSupportFilter
from regenesis.optimize.filters.pipeline import FilterOptions, build_filters, check_path
from regenesis.optimize.filters.reading import final_answer
from regenesis.optimize.filters.verdict import PathFilter, Verdict

__all__ = ["ArithmeticFilter", "ChoiceSupportFilter", "FilterOptions", "FormFilter", "JudgeFilter", "NumberSupportFilter",
           "PathFilter", "Verdict", "build_filters", "check_path", "degenerate_repetition", "derives_answer",
           "final_answer", "hint_leak", "hostile_shape", "mentions_hint", "power_bombs", "stated_computations"]
