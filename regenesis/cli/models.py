"""`regenesis models`: the embedded models and the accepted model spec forms."""

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from regenesis.models import EMBEDDED_MODELS, SPEC_FORMS, ModelSpecError


def register(commands) -> None:
    parser = commands.add_parser("models", help="list the embedded models and the accepted model specs",
                                 description=__doc__)
    parser.set_defaults(run=run)


def run(args) -> int:
    console = Console()
    embedded = Table(title="Embedded models (offline, in process)")
    for column in ("spec", "file", "installed", "description"):
        embedded.add_column(column)
    for model in EMBEDDED_MODELS.values():
        try:
            installed = "yes" if model.path().is_file() else "no"
        except ModelSpecError:  # its package is not installed
            installed = "no"
        embedded.add_row(*map(escape, (model.name, model.filename, installed, model.description)))
    console.print(embedded)
    forms = Table(title="Accepted --model forms")
    forms.add_column("form")
    forms.add_column("meaning")
    for form, meaning in SPEC_FORMS:
        forms.add_row(escape(form), escape(meaning))
    console.print(forms)
    return 0
