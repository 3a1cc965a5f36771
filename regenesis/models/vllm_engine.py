"""Hugging Face model folders through vLLM's offline engine on a GPU, the requests of DSPy's threads batched."""

from __future__ import annotations

import threading
from concurrent.futures import Future
from typing import Any

from dspy.lm15 import Response

from regenesis.models.engine import InProcessEngine, chat_response


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


class VLLMEngine(InProcessEngine):
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
        from vllm import LLM  # heavy, optional: vLLM (regenesis[vllm])

        return LLM(model=self.path, enable_prefix_caching=True, seed=0,
                   **{k: v for k, v in self.options.items() if v is not None})

    def _generate(self, model: str, kwargs: dict, spent_before: int = 0) -> Response:
        with self._registry_lock:
            batcher = self._batchers.setdefault(self._key(), _Batcher(self._generate_batch))
        output = batcher.submit((kwargs["messages"], self._sampling_params(kwargs)))
        completion = output.outputs[0]
        return chat_response(model, completion.text, completion.finish_reason or "stop",
                             len(output.prompt_token_ids or ()), spent_before + len(completion.token_ids))

    @staticmethod
    def _sampling_params(kwargs: dict):
        from vllm import SamplingParams  # heavy, optional: vLLM (regenesis[vllm])
        from vllm.sampling_params import StructuredOutputsParams  # heavy: vLLM, only on a GPU

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
