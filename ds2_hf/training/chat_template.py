"""The chat template a model is finetuned with: the tokenizer's when TRL can mask it, else the TULU template.

Base models without a chat template get the TULU template of the paper's data pool, written with
``{% generation %}`` markers so TRL can mask everything but the assistant turns.
"""

from __future__ import annotations

import logging
from pathlib import Path

logger = logging.getLogger(__name__)

#: The TULU chat template (the format of the paper's 300k-row pool), with ``{% generation %}`` markers around
#: each assistant turn and its end-of-sequence token so that ``assistant_only_loss`` trains the model to stop.
TULU_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ '<|system|>\n' + message['content'] + '\n' }}"
    "{% elif message['role'] == 'user' %}{{ '<|user|>\n' + message['content'] + '\n' }}"
    "{% elif message['role'] == 'assistant' %}{{ '<|assistant|>\n' }}"
    "{% generation %}{{ message['content'] + eos_token }}{% endgeneration %}{{ '\n' }}"
    "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"
)

CHAT_TEMPLATES = {"tulu": TULU_CHAT_TEMPLATE}


def resolve_chat_template(tokenizer, chat_template: str = "auto", *, assistant_only_loss: bool = True) -> str:
    """Install a trainable chat template on ``tokenizer`` and return the name of the choice made.

    ``"auto"``: keep the tokenizer's template if it has ``{% generation %}`` markers or TRL knows how to patch
    it, otherwise (no template: a base model; or an unknown template) install :data:`TULU_CHAT_TEMPLATE`.
    ``"tulu"``: always install the TULU template. Anything else: a Jinja template string or a path to a file.

    Returns
    -------
    str
        ``"tokenizer"``, ``"tulu"`` or ``"custom"``.
    """
    if chat_template == "auto":
        current = getattr(tokenizer, "chat_template", None)
        if not current:
            logger.info("the tokenizer has no chat template (base model): using the TULU template")
            tokenizer.chat_template = TULU_CHAT_TEMPLATE
            return "tulu"
        if not assistant_only_loss:
            return "tokenizer"
        from trl.chat_template_utils import get_training_chat_template

        try:
            get_training_chat_template(tokenizer)
            return "tokenizer"
        except ValueError:
            logger.warning(
                "the tokenizer's chat template has no {%% generation %%} markers and TRL cannot patch it, so "
                "assistant-only loss is impossible with it; using the TULU template instead (pass "
                "chat_template=<your template with {%% generation %%}> to choose another one)"
            )
            tokenizer.chat_template = TULU_CHAT_TEMPLATE
            return "tulu"
    if chat_template in CHAT_TEMPLATES:
        tokenizer.chat_template = CHAT_TEMPLATES[chat_template]
        return chat_template
    path = Path(chat_template)
    if "{%" not in chat_template and "{{" not in chat_template:
        if not path.is_file():
            raise ValueError(
                f"chat_template={chat_template!r} is neither 'auto', one of {sorted(CHAT_TEMPLATES)}, a Jinja "
                "template string nor an existing file"
            )
        chat_template = path.read_text()
    tokenizer.chat_template = chat_template
    return "custom"
