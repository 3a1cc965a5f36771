"""What an experiment is: its sections as dataclasses, read from a TOML file or built in Python.

Each table's keys and their types are read off a dataclass: the experiment's own sections below, and
``SynthesisConfig`` and ``FinetuneConfig`` (through their own ``from_toml``) for the settings they hold.
A config built in Python is written back as the TOML file that loads to an equal config, so every run
folder keeps the file that reproduces it.
"""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from regenesis.errors import BadInput
from regenesis.finetune import FinetuneConfig
from regenesis.optimize.config import SynthesisConfig
from regenesis.settings import InlineTable, check, dotted, schema, toml_text
from regenesis.tasks import TASKS

COUNT = {"minimum": 1}  # field metadata: a whole number ≥ 1
NOT_IN_TOML = {"toml": False}
SECTIONS = ("train", "eval", "methods", "finetune")


@dataclass
class UserDataset:
    """How to read a user dataset named as a task (a registered task takes none of these)."""

    question_field: str | None = None
    answer_field: str | None = None
    answer_type: str | None = None
    choices_field: str | None = None
    labels: list[str] | None = None

    def options(self, task: str) -> dict:
        return {} if task in TASKS else {f.name: getattr(self, f.name) for f in fields(UserDataset)}


@dataclass
class TrainSection(UserDataset):
    """[train]: the problems synthesis learns from."""

    task: str | None = None
    tasks: list[str] = field(default_factory=list)
    split: str = "train"
    limit: int | None = field(default=None, metadata=COUNT)  # per task
    data: str | None = None  # a local copy of the one registered task
    data_root: str | None = None
    max_tokens: int = field(default=512, metadata=COUNT)
    guidelines: str | None = None  # a guidelines file (default: the seed library)

    @property
    def task_names(self) -> list[str]:
        return self.tasks or [self.task]

    @classmethod
    def from_toml(cls, table: dict) -> TrainSection:
        train = cls(**check(table, schema(cls), dotted("train"), "train"))
        if not train.task and not train.tasks:
            raise BadInput('train: needs task = "..." or tasks = ["..."]')
        return train


@dataclass
class EvalSection(UserDataset):
    """[eval]: the problems every model is scored on."""

    tasks: list[str] = field(default_factory=list)
    in_domain: list[str] = field(default_factory=list)
    out_of_domain: list[str] = field(default_factory=list)
    splits: dict[str, str] = field(default_factory=dict)
    limit: int | None = field(default=None, metadata=COUNT)  # per task
    data_root: str | None = None
    max_tokens: int = field(default=512, metadata=COUNT)
    base_model: str | None = None  # the model of the row "base" (default: `model`)

    @classmethod
    def from_toml(cls, table: dict) -> EvalSection:
        evaluation = cls(**check(table, schema(cls), dotted("eval"), "eval"))
        if not evaluation.tasks:
            raise BadInput('eval: needs tasks = ["..."]')
        return evaluation


@dataclass
class FinetuneSection:
    """[finetune]: these keys, and FinetuneConfig's fields as ``settings``."""

    base: str | None = None  # the model fine-tuned (default: `model`; a hosted generator cannot be)
    export_gguf: str = "q8_0"  # "" for none
    settings: FinetuneConfig = field(default_factory=FinetuneConfig)

    @classmethod
    def from_toml(cls, table: dict) -> FinetuneSection:
        own_keys = schema(cls, without=("settings",))
        own = check({k: v for k, v in table.items() if k in own_keys}, own_keys, dotted("finetune"), "finetune")
        rest = {k: v for k, v in table.items() if k not in own_keys}
        return cls(**own, settings=FinetuneConfig.from_toml(rest, where="finetune"))

    def to_table(self) -> dict:
        return {"base": self.base, "export_gguf": self.export_gguf, **asdict(self.settings)}


@dataclass
class ExperimentConfig:
    """An experiment: what ``CONFIG.toml`` holds (see ``examples/quickstart.toml``), or the same built in
    Python (``ExperimentConfig(train=TrainSection(task="gsm8k-sample"), eval=..., methods={...})``)."""

    train: TrainSection
    eval: EvalSection
    methods: dict[str, SynthesisConfig]
    name: str = ""
    model: str | None = None
    api_base: str | None = None
    ray: str | None = None  # synthesize on this Ray cluster ("auto": the running one); the rows are the same
    rounds: int = field(default=1, metadata=COUNT)
    restart_from_base: bool = True
    num_threads: int = field(default=2, metadata=COUNT)
    allow_train_on_eval: bool = False  # train on problems the experiment also evaluates on (refused otherwise)
    finetune: FinetuneSection = field(default_factory=FinetuneSection)
    source: Path | None = field(default=None, compare=False, metadata=NOT_IN_TOML)  # the file it was read from
    text: str = field(default="", compare=False, metadata=NOT_IN_TOML)  # that file's text

    @property
    def origin(self) -> str:
        """What an error names as the config: its file, or the Python object."""
        return str(self.source) if self.source else "ExperimentConfig"

    @classmethod
    def load(cls, path: str | Path) -> ExperimentConfig:
        path = Path(path)
        if not path.is_file():
            raise BadInput(f"{path}: no such config file")
        try:
            text = path.read_text(encoding="utf-8")
            data = tomllib.loads(text)
        except UnicodeDecodeError:
            raise BadInput(f"{path}: not UTF-8 text") from None
        except tomllib.TOMLDecodeError as exc:
            raise BadInput(f"{path}: not valid TOML ({exc})") from None
        try:
            return cls.from_toml(data, name=path.stem, source=path, text=text)
        except BadInput as exc:
            raise BadInput(f"{path}: {exc}") from None

    @classmethod
    def from_toml(cls, data: dict, name: str = "", source: Path | None = None, text: str = "") -> ExperimentConfig:
        """The config a parsed TOML document describes; a BadInput names the key at fault."""
        check(data, schema(cls), dotted(""))
        for section in ("train", "eval", "methods"):
            if section not in data:
                raise BadInput(f"the [{section}] section is missing")
        scalars = {key: value for key, value in data.items() if key not in SECTIONS}
        threads = scalars.get("num_threads", 2)
        methods = {label: SynthesisConfig.from_toml({"method": label, **table}, where=f"methods.{label}",
                                                    num_threads=threads)
                   for label, table in data["methods"].items()}
        return cls(train=TrainSection.from_toml(data["train"]), eval=EvalSection.from_toml(data["eval"]),
                   methods=methods, finetune=FinetuneSection.from_toml(data.get("finetune", {})),
                   **{"name": name, **scalars}, source=source, text=text)

    def to_toml(self) -> str:
        """This config as a TOML file that ``load`` reads back to an equal config."""
        table = {f.name: getattr(self, f.name) for f in fields(self)
                 if f.metadata.get("toml", True) and f.name not in SECTIONS}
        table["train"] = asdict(self.train)
        table["eval"] = {**asdict(self.eval), "splits": InlineTable(self.eval.splits)}
        table["methods"] = {label: method.to_table() for label, method in self.methods.items()}
        table["finetune"] = self.finetune.to_table()
        text = toml_text(table)
        if ExperimentConfig.from_toml(tomllib.loads(text)) != self:
            raise BadInput(f"{self.origin}: a setting has no TOML form (a None where the default is a value, or "
                           "both generations and a ReGenesis budget)")
        return text

    def file_text(self) -> str:
        """The text of the file this config is kept as: the one it was read from, else its TOML form."""
        return self.text or self.to_toml()
