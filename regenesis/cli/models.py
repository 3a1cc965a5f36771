"""`regenesis models`: the embedded models, the accepted model spec forms, and which engines hold typed
output to its JSON schema."""

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from regenesis.models import EMBEDDED_MODELS, SPEC_FORMS, ModelSpecError

# What `adapter_for` and the engines do with a program's typed fields (see `regenesis.models`).
OUTPUT_CONSTRAINTS = [
    ("GGUF file, embedded default", "llama.cpp", "yes: JSON-schema grammar, strings bounded to the token budget"),
    ("Hugging Face folder", "transformers", "yes: xgrammar logits processor, the same string bounds"),
    ("Hugging Face folder (GPU)", "vLLM", "yes: vLLM structured output"),
    ("hosted_vllm/...", "vLLM's server", "yes: response_format with the JSON schema, strings bounded"),
    ("openai/... with --api-base", "the server", "with $REGENESIS_STRUCTURED_OUTPUT=json_schema (SGLang, llama.cpp's "
                                                 "server) or =json_object (llama-cpp-python's server)"),
    ("openai/... (OpenAI's API)", "the provider", "where DSPy's model catalog says the model takes a schema"),
    ("other providers", "the provider", "no: DSPy's ChatAdapter, with its JSON retry"),
]


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
    constraints = Table(title="Typed output (a program's fields) held to its JSON schema")
    for column in ("model", "engine", "constrained"):
        constraints.add_column(column)
    for row in OUTPUT_CONSTRAINTS:
        constraints.add_row(*map(escape, row))
    console.print(constraints)
    return 0
