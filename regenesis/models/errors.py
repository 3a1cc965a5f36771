"""The errors of model resolution and model calls, and the kind of failure a model call had."""

from __future__ import annotations

import sys

from dspy.utils import exceptions as dspy_errors
from dspy.utils.exceptions import LMConfigurationError

from regenesis.errors import BadInput


class ModelSpecError(BadInput):
    """A model spec that cannot be resolved; the one-line message names the spec and says why."""


class ModelLoadError(LMConfigurationError, RuntimeError):
    """An in-process engine could not load its model file; the message names the file.

    It is a DSPy ``LMError`` so that DSPy passes it on unchanged (other engine exceptions become
    ``LMUnexpectedError``) and, like every configuration error, never retries it.
    """


ERROR_KINDS = ("server_error", "rate_limit", "timeout", "connection", "auth", "bad_request", "model_load", "parse",
               "other")


def _error_classes() -> tuple[tuple[str, tuple[type, ...]], ...]:
    """Each kind with the exception classes of DSPy, the OpenAI SDK (LiteLLM's errors subclass its ones)
    and httpx that mean it. The order matters: to the OpenAI SDK and to httpx a timeout is a connection
    error too. LiteLLM's own are looked at only once it is loaded (no error of it can exist before), as
    importing it takes seconds.
    """
    import httpx  # heavy: the HTTP clients load only once a call has failed
    import openai  # heavy: the openai client

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
