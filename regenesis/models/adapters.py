"""The adapter a model is asked with, and the fine-tuning rows written in that same format.

Models whose output is held to a JSON schema are asked through DSPy's JSONAdapter, whose
``format_finetune_data`` raises NotImplementedError: ``dspy.BootstrapFinetune`` failed after
``configure()``, and would have trained on ChatAdapter turns while inference asked for JSON.
``FinetuneJSONAdapter`` is that JSONAdapter (the same prompts, the same parsing) that also writes
fine-tuning rows; ``adapter_for`` returns it, and ``finetune_adapter`` turns any adapter a program
runs under into one that can write its own rows.

``PathAdapter`` is the adapter of the steps that write a reasoning path. Held to a JSON schema, a small
model closes the reasoning string after a sentence or two (the embedded model's ReGenesis solve step:
a median of 17 tokens of reasoning as a JSON string, 172 in plain text, against 158 for its free chain
of thought on the same problems, ``benchmarks/path_length.py``): asked in plain text, the way ``eval``
asks, it reasons at its own length.
``path_adapter`` gives it in place of a JSON adapter where the answer is free text, and keeps any other.
"""

from __future__ import annotations

import re
from typing import Any

import dspy
from dspy.utils.exceptions import AdapterParseError

from regenesis.answers import ANSWER_MARKER, final_answer_spans, first_sentence
from regenesis.models.engine import is_in_process
from regenesis.models.remote import RemoteLM
from regenesis.prompting import STEP_BY_STEP, answer_field, path_text


class WritesFinetuneRows:
    """An adapter's fine-tuning rows: its own prompt, then the outputs as its assistant turn."""

    def format_finetune_data(self, signature: type[dspy.Signature], demos: list[dict[str, Any]],
                             inputs: dict[str, Any], outputs: dict[str, Any]) -> dict[str, list[Any]]:
        prompt = self.format(signature=signature, demos=demos, inputs=inputs)
        answer = self.format_assistant_message_content(signature=signature, outputs=outputs)
        return {"messages": [*prompt, {"role": "assistant", "content": answer}]}


class FinetuneJSONAdapter(WritesFinetuneRows, dspy.JSONAdapter):
    """DSPy's JSONAdapter that also formats fine-tuning rows: its own prompt, then the outputs as the JSON
    object it parses back."""


def finetune_adapter(adapter: dspy.Adapter) -> dspy.Adapter:
    """``adapter``, able to format fine-tuning rows: a JSONAdapter becomes a ``FinetuneJSONAdapter``, so the
    rows are the prompts the tuned model will be sent; any other adapter formats its own rows."""
    if isinstance(adapter, dspy.JSONAdapter) and not isinstance(adapter, FinetuneJSONAdapter):
        return FinetuneJSONAdapter()
    return adapter


def adapter_for(lm: dspy.LM) -> dspy.Adapter:
    """The adapter that makes ``lm`` parse reliably.

    DSPy's JSONAdapter (as ``FinetuneJSONAdapter``, so the same adapter also writes the model's
    fine-tuning rows) where the model's output is held to the JSON schema it sends: in-process models
    (xgrammar token masks for GGUF and transformers models, vLLM's structured output) and servers that take a
    JSON-schema ``response_format``; DSPy's default ChatAdapter elsewhere.
    """
    if constrains_output(lm):
        return FinetuneJSONAdapter()
    return dspy.ChatAdapter()


def constrains_output(lm: dspy.BaseLM) -> bool:
    """Whether a structured-output request holds ``lm``'s output to the JSON schema."""
    return is_in_process(lm) or (isinstance(lm, RemoteLM) and lm.supports_response_schema)


def path_adapter(adapter: dspy.Adapter | None, signature: type[dspy.Signature]) -> dspy.Adapter | None:
    """The adapter a path-writing step runs under: ``PathAdapter`` where ``adapter`` would hold the output to
    a JSON schema and the path states one free-text answer; ``adapter`` itself otherwise. DSPy's ChatAdapter
    already leaves each field free text, and typed or several outputs need the schema a small model keeps
    to (in plain text the embedded model wrote no readable two-output path in 6 samples)."""
    if isinstance(adapter, dspy.JSONAdapter) and states_one_text_answer(signature):
        return PathAdapter()
    return adapter


def states_one_text_answer(signature: type[dspy.Signature]) -> bool:
    """Whether ``signature`` outputs a reasoning and then one answer of type ``str``."""
    names = list(signature.output_fields)
    return len(names) == 2 and names[0] == "reasoning" and signature.output_fields[names[1]].annotation is str


class PathAdapter(WritesFinetuneRows, dspy.Adapter):
    """Asks for a reasoning and an answer as one reasoning path in plain text, and reads them back from it.

    The signature's outputs are ``reasoning`` and one answer (``states_one_text_answer``). The path is the
    text a training row holds (``regenesis.prompting.path_text``): the reasoning, then the final-answer
    line. The answer is read where the metric reads it (``regenesis.answers``: the first sentence of the
    last final-answer span), and the reasoning is the text before that statement; a path that states no
    answer fails to parse.
    """

    def format_field_description(self, signature: type[dspy.Signature]) -> str:
        described = [f"- {name}: {field.json_schema_extra['desc']}" for name, field in signature.input_fields.items()
                     if field.json_schema_extra.get("desc") != f"${{{name}}}"]
        return "You are given:\n" + "\n".join(described) if described else ""

    def format_field_structure(self, signature: type[dspy.Signature]) -> str:
        return ""

    def format_task_description(self, signature: type[dspy.Signature]) -> str:
        return signature.instructions

    def format_system_message(self, signature: type[dspy.Signature]) -> str:
        parts = [self.format_task_description(signature), self.format_field_description(signature)]
        return "\n\n".join(part for part in parts if part)

    def format_user_message_content(self, signature: type[dspy.Signature], inputs: dict[str, Any], prefix: str = "",
                                    suffix: str = "", main_request: bool = False) -> str:
        blocks = [prefix] if prefix else []
        blocks += [f"{_title(name)}:\n{inputs[name]}" for name in signature.input_fields if name in inputs]
        if main_request:
            blocks.append(STEP_BY_STEP)
        if suffix:
            blocks.append(suffix)
        return "\n\n".join(blocks)

    def format_assistant_message_content(self, signature: type[dspy.Signature], outputs: dict[str, Any],
                                         missing_field_message: str | None = None) -> str:
        answer = _answer(signature)
        return path_text(outputs.get("reasoning", ""), {answer: outputs.get(answer, missing_field_message)}, answer)

    def parse(self, signature: type[dspy.Signature], completion: str) -> dict[str, Any]:
        spans = final_answer_spans(completion)
        if not spans:
            raise AdapterParseError(adapter_name=type(self).__name__, signature=signature, lm_response=completion,
                                    message="the path states no final answer ('The answer is ...')")
        markers = list(ANSWER_MARKER.finditer(completion))
        reasoning = _without_lead_in(completion[:markers[-1].start()]) if markers else completion
        return {"reasoning": reasoning.strip(), _answer(signature): first_sentence(spans[0]).strip()}


def _answer(signature: type[dspy.Signature]) -> str:
    return answer_field(name for name in signature.output_fields if name != "reasoning")


# What is left of "So the answer is 4." once the answer statement is cut off.
_LEAD_IN = re.compile(r"(?:\b(?:so|thus|therefore|hence)\b[\s,]*)?(?:\b(?:the|my|our)\b)?[\s,]*$", re.IGNORECASE)


def _without_lead_in(text: str) -> str:
    """``text`` without its dangling lead-in, looked for in the last 40 characters only (a pattern anchored
    at the end is quadratic in a long run of blanks)."""
    return (text[:-40] + _LEAD_IN.sub("", text[-40:])).rstrip(" \t,;:")


def _title(name: str) -> str:
    return name.replace("_", " ").capitalize()
