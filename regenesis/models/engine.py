"""The shared parts of the in-process engines: a pool of loaded copies per model, DSPy requests in
llama-cpp-python's chat form, and the string bounds that let a JSON answer close within its token budget.

Each engine sits inside a ``dspy.LM`` (``dspy.LM(model, engine=...)``), so DSPy's cache, retries,
threads and ``rollout_id`` work the same for every kind of model.
"""

from __future__ import annotations

import queue
import threading
from contextlib import contextmanager
from typing import Any

import dspy
from dspy.lm15 import Message, Response, TextPart, Usage, response_to_events

from regenesis.models.errors import ModelLoadError

DEFAULT_MAX_TOKENS = 1024
JSON_OVERHEAD_TOKENS = 64
# The grammar bounds strings in characters, the budget is in tokens. SmolLM2's own outputs average
# 3.3 characters a token (5th percentile 2.25, GSM8K's digit-heavy solutions 2.3), so 2 characters a
# token lets the strings of one output fill its budget and close in nearly every case. One character a
# token can never overflow, but as the only bound it cut reasoning paths at a quarter of the budget.
CHARS_PER_TOKEN = 2
MIN_STRING_CHARS = 64  # a string's bound on the first try, however small its share of the budget
MAX_ARRAY_ITEMS = 16

# llama-cpp-python silences a model load by pointing the process's stdout and stderr at /dev/null and
# back; two loads at once can restore each other's /dev/null and silence the process for good.
_LOADING = threading.Lock()


def request_messages(request) -> list[dict[str, str]]:
    messages = []
    if request.system is not None:
        system = request.system if isinstance(request.system, str) else "".join(p.text for p in request.system)
        messages.append({"role": "system", "content": system})
    for message in request.messages:
        text = "".join(p.text for p in message.parts if isinstance(p, TextPart))
        messages.append({"role": "user" if message.role == "developer" else message.role, "content": text})
    return messages


def chat_response(model: str, text: str, finish_reason: str, prompt_tokens: int, completion_tokens: int) -> Response:
    return Response(
        id=None,
        model=model,
        message=Message.assistant([TextPart(text)]),
        finish_reason="length" if finish_reason == "length" else "stop",
        usage=Usage(input_tokens=prompt_tokens, output_tokens=completion_tokens,
                    total_tokens=prompt_tokens + completion_tokens),
    )


class ModelPool:
    """Up to ``size`` loaded copies of one model, each serving one request at a time.

    Copies load lazily, only when that many requests run at once; the copy used last is lent first,
    so a single caller keeps reusing one copy (and the prompt prefix it holds). Which copy serves a
    prompt matters little for llama.cpp: every copy starts from the prefix states all copies share
    (``regenesis.models.llama_prefix``).
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


class InProcessEngine:
    """Shared parts of the in-process engines: a pool of loaded copies per model file.

    A subclass names its ``loader`` and gives ``_load`` (one loaded copy) and ``_generate`` (the answer to
    a request in ``create_chat_completion`` form).
    """

    supports_response_schema = True
    supports_function_calling = False
    supports_reasoning = False
    supported_params = ("temperature", "top_p", "max_tokens", "stop", "seed", "response_format")
    max_string_chars: int | None = None  # the longest string bound the engine's grammar accepts
    loader: str

    _pools: dict[tuple, ModelPool] = {}
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
            pool = self._pools.setdefault(self._key(), ModelPool(self._load_copy, self.copy_count()))
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

    def _load(self):
        raise NotImplementedError

    def _generate(self, model: str, kwargs: dict, spent_before: int = 0) -> Response:
        raise NotImplementedError

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
            "messages": request_messages(request),
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
        for chars_per_token, minimum in ((CHARS_PER_TOKEN, MIN_STRING_CHARS), (1, 0)):
            max_chars = string_bound(schema, kwargs["max_tokens"], chars_per_token, self.max_string_chars, minimum)
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


def is_in_process(lm: dspy.BaseLM) -> bool:
    return isinstance(getattr(lm, "engine", None), InProcessEngine)


def count_strings(schema: Any) -> int:
    if isinstance(schema, dict):
        return (schema.get("type") == "string") + sum(count_strings(v) for v in schema.values())
    if isinstance(schema, list):
        return sum(count_strings(item) for item in schema)
    return 0


def string_bound(schema: dict, max_tokens: int, chars_per_token: int, limit: int | None = None,
                 minimum: int = MIN_STRING_CHARS) -> int | None:
    """The characters each string of ``schema`` may hold: ``chars_per_token`` for each token of its share of
    ``max_tokens`` (at least ``minimum``), or ``None`` (unbounded) above ``limit``. With one character a
    token and no minimum, the strings fit the budget however small it is."""
    share = (max_tokens - JSON_OVERHEAD_TOKENS) // max(1, count_strings(schema))
    max_chars = max(minimum, share * chars_per_token, 0)
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
        if (bounded.get("type") == "string" and max_chars is not None
                and "maxLength" not in bounded and "enum" not in bounded):
            bounded["maxLength"] = max_chars
        if bounded.get("type") == "array" and "maxItems" not in bounded:
            bounded["maxItems"] = MAX_ARRAY_ITEMS
        return bounded
    if isinstance(schema, list):
        return [bounded_strings(item, max_chars) for item in schema]
    return schema
