"""The adapter a model is asked with, and the fine-tuning rows written in that same format.

Models whose output is held to a JSON schema are asked through DSPy's JSONAdapter, whose
``format_finetune_data`` raises NotImplementedError: ``dspy.BootstrapFinetune`` failed after
``configure()``, and would have trained on ChatAdapter turns while inference asked for JSON.
``FinetuneJSONAdapter`` is that JSONAdapter (the same prompts, the same parsing) that also writes
fine-tuning rows; ``adapter_for`` returns it, and ``finetune_adapter`` turns any adapter a program
runs under into one that can write its own rows.

``PathAdapter`` is the adapter of the steps that write a reasoning path. Held to a JSON schema, a small
model closes the reasoning string after a sentence or two (the embedded model's ReGenesis solve step:
median 11 tokens of reasoning, against 158 for its free chain of thought on the same problems,
``benchmarks/path_length.py``); asked in plain text, the way ``eval`` asks, it reasons at its own length.
``path_adapter`` gives it in place of a JSON adapter and keeps any other.
"""

from __future__ import annotations

import re
from typing import Any

import dspy
from dspy.adapters.utils import parse_value
from dspy.utils.exceptions import AdapterParseError

from regenesis.answers import ANSWER_MARKER, final_answer_spans, first_sentence
from regenesis.models.engine import is_in_process
from regenesis.models.remote import RemoteLM
from regenesis.prompting import STEP_BY_STEP, answer_field, path_text


class FinetuneJSONAdapter(dspy.JSONAdapter):
    """DSPy's JSONAdapter that also formats fine-tuning rows: its own prompt, then the outputs as the JSON
    object it parses back."""

    def format_finetune_data(self, signature: type[dspy.Signature], demos: list[dict[str, Any]],
                             inputs: dict[str, Any], outputs: dict[str, Any]) -> dict[str, list[Any]]:
        prompt = self.format(signature=signature, demos=demos, inputs=inputs)
        answer = self.format_assistant_message_content(signature=signature, outputs=outputs)
        return {"messages": [*prompt, {"role": "assistant", "content": answer}]}


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


def path_adapter(adapter: dspy.Adapter | None) -> dspy.Adapter | None:
    """The adapter a path-writing step runs under: ``PathAdapter`` where ``adapter`` would hold the output to
    a JSON schema, ``adapter`` itself otherwise (DSPy's ChatAdapter already leaves each field free text)."""
    return PathAdapter() if isinstance(adapter, dspy.JSONAdapter) else adapter


class PathAdapter(dspy.Adapter):
    """Asks for a signature's outputs as one reasoning path in plain text, and reads them back from it.

    The signature's first output is ``reasoning``. The path is the text a training row holds
    (``regenesis.prompting.path_text``): the reasoning, a ``name: value`` line for each other output but the
    answer field (``answer``, or the last output), and the final-answer line. The answer is read where the
    metric reads it (``regenesis.answers``: the first sentence of the last final-answer span), and the
    reasoning is the text before that statement; a path that states no answer, or lacks an output line,
    fails to parse.
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
            blocks.append(self.closing_instruction(signature))
        if suffix:
            blocks.append(suffix)
        return "\n\n".join(blocks)

    def closing_instruction(self, signature: type[dspy.Signature]) -> str:
        others = [name for name in _outputs(signature) if name != answer_field(_outputs(signature))]
        if not others:
            return STEP_BY_STEP
        lines = ", ".join(f"'{name}: ...'" for name in others)
        return f"{STEP_BY_STEP} Just before that line, write one line each: {lines}."

    def format_assistant_message_content(self, signature: type[dspy.Signature], outputs: dict[str, Any],
                                         missing_field_message: str | None = None) -> str:
        names = _outputs(signature)
        values = {name: outputs.get(name, missing_field_message) for name in names}
        return path_text(outputs.get("reasoning", ""), values, answer_field(names))

    def format_finetune_data(self, signature: type[dspy.Signature], demos: list[dict[str, Any]],
                             inputs: dict[str, Any], outputs: dict[str, Any]) -> dict[str, list[Any]]:
        prompt = self.format(signature=signature, demos=demos, inputs=inputs)
        answer = self.format_assistant_message_content(signature=signature, outputs=outputs)
        return {"messages": [*prompt, {"role": "assistant", "content": answer}]}

    def parse(self, signature: type[dspy.Signature], completion: str) -> dict[str, Any]:
        names = _outputs(signature)
        answer = answer_field(names)
        spans = final_answer_spans(completion)
        if not spans:
            raise self._unparsed(signature, completion, "the path states no final answer ('The answer is ...')")
        markers = list(ANSWER_MARKER.finditer(completion))
        reasoning = _without_lead_in(completion[:markers[-1].start()]) if markers else completion
        lines = reasoning.splitlines()
        fields: dict[str, Any] = {answer: first_sentence(spans[0]).strip()}
        for name in names:
            if name == answer:
                continue
            line = _output_line(name)
            found = [i for i, text in enumerate(lines) if line.match(text)]
            if not found:
                raise self._unparsed(signature, completion, f"the path has no '{name}: ...' line")
            fields[name] = line.match(lines[found[-1]]).group(1).strip()
            del lines[found[-1]]
        fields["reasoning"] = "\n".join(lines).strip()
        for name, value in fields.items():
            try:
                fields[name] = parse_value(value, signature.output_fields[name].annotation)
            except ValueError as error:
                raise self._unparsed(signature, completion, f"{name}: {error}") from error
        return fields

    def _unparsed(self, signature, completion: str, message: str) -> AdapterParseError:
        return AdapterParseError(adapter_name=type(self).__name__, signature=signature, lm_response=completion,
                                 message=message)


def _outputs(signature: type[dspy.Signature]) -> list[str]:
    """The output fields a path states, in order (``reasoning`` is the path itself)."""
    return [name for name in signature.output_fields if name != "reasoning"]


# What is left of "So the answer is 4." once the answer statement is cut off.
_LEAD_IN = re.compile(r"(?:\b(?:so|thus|therefore|hence)\b[\s,]*)?(?:\b(?:the|my|our)\b)?[\s,]*$", re.IGNORECASE)


def _without_lead_in(text: str) -> str:
    """``text`` without its dangling lead-in, looked for in the last 40 characters only (a pattern anchored
    at the end is quadratic in a long run of blanks)."""
    return (text[:-40] + _LEAD_IN.sub("", text[-40:])).rstrip(" \t,;:")


def _title(name: str) -> str:
    return name.replace("_", " ").capitalize()


def _output_line(name: str) -> re.Pattern:
    return re.compile(rf"^\s*\**{re.escape(name)}\**\s*:\s*(.*)$", re.IGNORECASE)
