"""A chat template that marks the assistant turn, so that TRL puts the loss on it alone.

TRL's ``assistant_only_loss`` needs ``{% generation %}`` markers around what the model must learn
to write. Few templates ship them; TRL patches some families by exact match, SmolLM2's (ChatML with
a default system prompt) is not among them. For any ChatML template we write the same template with
markers and prove that it renders every probe conversation exactly like the model's own.
"""

from __future__ import annotations

import json
import re

from regenesis.errors import BadInput

_USER_PROBE = "\x00user probe\x00"
_GENERATION_TAG = re.compile(r"\{%-?\s*(end)?generation\s*-?%\}")

# Conversations the rewritten template must render exactly like the original one.
_PROBES = [
    ([{"role": "user", "content": "u"}, {"role": "assistant", "content": "a"}], False),
    ([{"role": "system", "content": "s"}, {"role": "user", "content": "u"},
      {"role": "assistant", "content": "a"}, {"role": "user", "content": "v"}], True),
    ([{"role": "user", "content": "u"}], True),
]


def training_template(tokenizer, base: str) -> str:
    """The tokenizer's chat template with ``{% generation %}`` markers around each assistant turn."""
    from trl.chat_template_utils import get_training_chat_template, has_generation_markers  # heavy: trl

    template = tokenizer.chat_template
    if isinstance(template, dict):
        template = template.get("default")
    if not template:
        raise BadInput(f"base model {base}: the tokenizer has no chat template")
    if has_generation_markers(template):
        return template
    try:
        patched = get_training_chat_template(tokenizer)
    except ValueError:
        patched = None
    if patched:
        return patched
    chatml = _chatml_with_markers(tokenizer, template)
    if chatml is None:
        raise BadInput(
            f"base model {base}: its chat template has no {{% generation %}} markers and is neither ChatML nor a "
            "family TRL can patch; add the markers around the assistant content in chat_template.jinja"
        )
    return chatml


def without_generation_markers(template: str) -> str:
    """The same template for runtimes that do not know the tags (llama.cpp's Jinja)."""
    return _GENERATION_TAG.sub("", template)


def _chatml_with_markers(tokenizer, template: str) -> str | None:
    default_system = _default_chatml_system(tokenizer, template)
    if default_system is None:
        return None
    candidate = _chatml_template(default_system)
    for messages, add_generation_prompt in _PROBES:
        if _render(tokenizer, template, messages, add_generation_prompt) != _render(
                tokenizer, candidate, messages, add_generation_prompt):
            return None
    return candidate


def _default_chatml_system(tokenizer, template: str) -> str | None:
    """What the template puts before a lone user turn: '' or a ChatML system turn; None if not ChatML."""
    rendered = _render(tokenizer, template, [{"role": "user", "content": _USER_PROBE}], False)
    prefix, found, _ = rendered.partition(f"<|im_start|>user\n{_USER_PROBE}<|im_end|>")
    if not found:
        return None
    if prefix and not (prefix.startswith("<|im_start|>system\n") and prefix.endswith("<|im_end|>\n")):
        return None
    return prefix


def _chatml_template(default_system: str) -> str:
    # json.dumps gives a quoted string with escapes that Jinja reads back as the same text.
    default = (
        "{%- if messages[0]['role'] != 'system' %}{{ " + json.dumps(default_system) + " }}{%- endif %}"
        if default_system else ""
    )
    return (
        default
        + "{%- for message in messages %}"
        "{%- if message['role'] == 'assistant' %}"
        "{{- '<|im_start|>assistant\\n' }}{% generation %}{{- message['content'] + '<|im_end|>' }}{% endgeneration %}"
        "{{- '\\n' }}"
        "{%- else %}"
        "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
        "{%- endif %}"
        "{%- endfor %}"
        "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
    )


def _render(tokenizer, template: str, messages: list[dict], add_generation_prompt: bool) -> str:
    return tokenizer.apply_chat_template(messages, chat_template=template, tokenize=False,
                                         add_generation_prompt=add_generation_prompt)
