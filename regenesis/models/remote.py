"""Remote models (any LiteLLM model string), the JSON-schema form each server takes, and the cache
identity of a model: which server answers it, kept apart in DSPy's cache by rollout ids of its own."""

from __future__ import annotations

import hashlib
import os
import warnings
from typing import Any

import dspy
import pydantic

from regenesis import redact
from regenesis.models.engine import CHARS_PER_TOKEN, DEFAULT_MAX_TOKENS, bounded_strings, is_in_process, string_bound
from regenesis.models.errors import ModelSpecError
from regenesis.models.source import ModelSource

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

# The forms of JSON-schema ``response_format`` servers take: OpenAI's (vLLM, SGLang, llama.cpp's own server)
# and ``{"type": "json_object", "schema": ...}`` (llama-cpp-python's server, which refuses OpenAI's).
SCHEMA_FORMS = ("json_schema", "json_object")

# DSPy leaves api_base out of its cache key, so two servers that serve the same model name would read
# each other's cached answers. A remote LM with an endpoint draws its rollout ids from a range of its
# own instead: the rollout id is in DSPy's cache key and is never sent to the provider, and DSPy's own
# samplers (BestOfN, Refine) count up from ``lm.kwargs["rollout_id"]`` as ``sampling_lm`` does.
ROLLOUT_SPAN = 1 << 20  # distinct samples per endpoint; the ranges stay within orjson's 64-bit integers
# With an endpoint's rollout id, DSPy's warning that a rollout id has no effect at temperature 0 is wrong:
# the id keeps the endpoints' cache entries apart at every temperature.
warnings.filterwarnings("ignore", message="rollout_id has no effect when temperature=0")


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


def remote_lm(source: ModelSource, api_base: str | None, api_key: str | None, temperature: float, max_tokens: int,
              structured_output: str | bool | None = None, **kwargs: Any) -> dspy.LM:
    """The ``RemoteLM`` of a LiteLLM model string, with its key checked and its endpoint's rollout ids."""
    spec, provider = source.spec, source.provider
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
    return int(hashlib.sha256(identity.encode()).hexdigest()[:10], 16) * ROLLOUT_SPAN if identity != lm.model else 0
