"""`regenesis synthesize`: grow a training set of reasoning paths with one method."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from regenesis.cli.options import add_model_options, model_options
from regenesis.cli.tasks import add_task_options, examples_from_args
from regenesis.errors import BadInput
from regenesis.evals.funnel import failed_note, funnel_chart, funnel_rows
from regenesis.guidelines import load_guidelines
from regenesis.models import ModelSpecError, resolve_lm
from regenesis.optimize.bootstrap import synthesize
from regenesis.optimize.config import PRESETS, SynthesisConfig
from regenesis.optimize.distributed import ModelSource, synthesize_on_ray
from regenesis.optimize.methods import METHOD_NAMES


def register(commands) -> None:
    parser = commands.add_parser("synthesize", help="synthesize reasoning paths and keep the right ones as training rows",
                                 description=__doc__)
    parser.add_argument("--method", default="regenesis", choices=METHOD_NAMES)
    add_model_options(parser)
    add_task_options(parser)
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="output folder (rerun the same command to resume it and to retry the problems that failed)")
    budget = parser.add_argument_group("budget")
    budget.add_argument("--preset", default="default", choices=list(PRESETS),
                        help="default: 4 guideline sets per problem (regenesis: 14 generations, and up to as many "
                             "again in the hinted pass of a problem the first pass leaves unsolved); paper: the "
                             "reference budget (20 selections + every guideline alone, temperature 1.2, top_p 0.9; "
                             "a hinted pass of about 100 generations at temperature 0.85)")
    budget.add_argument("--generations", type=int, default=None, metavar="N",
                        help="generations per problem before the hinted pass, shared by all methods (for "
                             "equal-cost comparisons; it replaces the preset's guideline sets); the hinted pass "
                             "can spend as many again (the paper preset: its own 100)")
    budget.add_argument("--selections", type=int, default=None, help="regenesis: model-selected guideline sets")
    budget.add_argument("--singles", type=int, default=None, help="regenesis: single-guideline sets")
    budget.add_argument("--paths-per-set", type=int, default=None, help="regenesis: solve samples per guideline set")
    budget.add_argument("--max-kept", type=int, default=None, help="most rows kept per problem (default 5)")
    budget.add_argument("--no-hint", action="store_true", help="skip the hinted pass for unsolved problems")
    budget.add_argument("--hint-generations", type=int, default=None, metavar="N",
                        help="generations of the hinted pass (default: the first pass's; the paper preset: 100)")
    budget.add_argument("--hint-temperature", type=float, default=None,
                        help="temperature of the hinted pass (default: the first pass's; the paper preset: 0.85)")
    budget.add_argument("--label-free", action="store_true",
                        help="regenesis: keep paths that reach the majority answer instead of the gold answer")
    budget.add_argument("--temperature", type=float, default=None)
    budget.add_argument("--top-p", type=float, default=None)
    budget.add_argument("--max-tokens", type=int, default=None, help="tokens per generation")
    parser.add_argument("--guidelines", default=None, metavar="FILE", help="a guideline library ('name: text' lines)")
    parser.add_argument("--num-threads", type=int, default=2, help="problems processed at once")
    parser.add_argument("--ray", default=None, metavar="ADDRESS",
                        help="run on a Ray cluster: its address, auto for the running one, local for a new one "
                             "here (pip install 'regenesis[ray]'); --num-threads is then per worker")
    quality = parser.add_argument_group("quality filters (after answer matching)")
    quality.add_argument("--no-arithmetic-check", action="store_true")
    quality.add_argument("--no-form-check", action="store_true")
    quality.add_argument("--no-number-support-check", action="store_true")
    quality.add_argument("--no-choice-support-check", action="store_true")
    quality.add_argument("--no-hinted-derivation-check", action="store_true",
                         help="keep hinted paths that state their number answer without computing it")
    quality.add_argument("--judge", default=None, metavar="SPEC", help="a model spec that judges each kept path")
    parser.set_defaults(run=run)


def run(args) -> int:
    config = SynthesisConfig.from_args(args)
    if args.judge:
        try:
            resolve_lm(args.judge)
        except ModelSpecError as exc:
            raise BadInput(f"--judge {args.judge}: {exc}") from None
    guidelines = load_guidelines(args.guidelines) if args.guidelines else None
    examples = examples_from_args(args)
    extra = {"max_tokens": args.max_tokens} if args.max_tokens else {}
    options = {**model_options(args), **extra}
    if args.ray:
        report = synthesize_on_ray(ModelSource(args.model, options), examples, args.out, config, address=args.ray,
                                   guidelines=guidelines)
    else:
        report = synthesize(resolve_lm(args.model, **options), examples, args.out, config, guidelines=guidelines)
    print_report(report)
    chart = funnel_chart(report, Path(args.out) / "funnel.png", title=report["method"])
    Console().print(f"funnel: {chart}", markup=False, highlight=False)
    return 1 if report["failed"] else 0


REPORT_LINES = (
    ("problems", "problems done (finished + failed)"),
    ("finished", "finished"),
    ("failed", "failed (a model call failed; retried by a rerun)"),
    ("solved_without_hint", "solved without the hint"),
    ("solved_with_hint", "solved only with the hint"),
    ("kept_rows", "kept rows"),
    ("generations", "generations (model calls that answered, cached included)"),
    ("cached_generations", "  of them from the cache"),
    ("failed_calls", "failed model calls"),
    ("prompt_tokens", "prompt tokens (new generations)"),
    ("completion_tokens", "completion tokens (new generations)"),
    ("generations_per_kept_row", "generations per kept row"),
)


def print_report(report: dict) -> None:
    table = Table(title=f"synthesize · {escape(report['method'])}")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for key, label in REPORT_LINES:
        table.add_row(label, str(report[key]))
    table.add_row("dropped candidates", escape(json.dumps(report["dropped"])))
    if report["failed"]:
        table.add_row("failed by kind", escape(json.dumps(report["failed_by_kind"])))
    funnel = Table(title="where the generations went")
    for column in ("stage", "count", "dropped", "% of samples"):
        funnel.add_column(column, justify="left" if column == "stage" else "right")
    for name, count, dropped, share in funnel_rows(report):
        funnel.add_row(name, str(count), "" if dropped is None else str(dropped), share)
    console = Console()
    console.print(table)
    console.print(funnel)
    if note := failed_note(report):
        console.print(note, markup=False, highlight=False)
    console.print(f"rows: {report['rows_file']}", markup=False, highlight=False)
    if report["failed"]:
        console.print(f"failed problems: {report['failed']}; run the same command again to retry them",
                      markup=False, highlight=False)
