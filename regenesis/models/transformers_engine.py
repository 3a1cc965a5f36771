"""Hugging Face model folders in process through transformers, their JSON held to the schema by xgrammar."""

from __future__ import annotations

import json
from typing import Any

from dspy.lm15 import Response

from regenesis.models.engine import InProcessEngine, chat_response


class TransformersEngine(InProcessEngine):
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
        return chat_response(model, text, finish_reason, prompt_tokens, spent_before + completion_tokens)


class _TransformersCopy:
    """One loaded Hugging Face model, its tokenizer, and an xgrammar compiler for its vocabulary."""

    def __init__(self, path: str):
        import torch  # heavy: torch, transformers and xgrammar load with the first copy
        import xgrammar  # heavy: xgrammar
        from transformers import AutoModelForCausalLM, AutoTokenizer  # heavy: transformers

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
        import xgrammar.contrib.hf  # heavy: xgrammar's transformers bridge, loaded with the first JSON request

        if "schema" in response_format:
            grammar = self.grammars.compile_json_schema(json.dumps(response_format["schema"]), any_whitespace=False)
        else:
            grammar = self.grammars.compile_builtin_json_grammar()
        return [xgrammar.contrib.hf.LogitsProcessor(grammar)]

    def generate(self, kwargs: dict) -> tuple[str, str, int, int]:
        """``(text, finish_reason, prompt_tokens, completion_tokens)`` for a ``create_chat_completion`` request."""
        import torch  # heavy: already loaded by this copy's model
        from transformers import LogitsProcessorList  # heavy: transformers

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
