"""`regenesis experiment`: evaluate the base model, synthesize, fine-tune and evaluate again, from one TOML file."""

from pathlib import Path

from rich.console import Console
from rich.markdown import Markdown
from rich.markup import escape

from regenesis.experiment import run_experiment


def register(commands) -> None:
    parser = commands.add_parser("experiment", help="run a bootstrap-then-finetune experiment from a TOML config",
                                 description=__doc__)
    parser.add_argument("config", metavar="CONFIG.toml", help="the experiment (see examples/quickstart.toml)")
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="the report folder; rerun the same command to resume after an interruption. A stage "
                             "whose inputs changed is recomputed with the stages after it (its old output is moved "
                             "to <folder>.stale-<time>); unchanged finished stages are skipped")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(run=run)


def run(args) -> int:
    experiment = run_experiment(args.config, args.out, progress=not args.quiet)
    console = Console()
    if experiment.skipped:
        console.print(f"[dim]already finished with the same inputs, skipped: {escape(', '.join(experiment.skipped))}[/dim]")
    report = Path(experiment.report)
    console.print(Markdown(report.read_text(encoding="utf-8").split("\n## ")[0]))
    console.print(f"\nReport: [bold]{escape(str(report))}[/bold]")
    return 0
