"""Prompt templates: named files in `prompts/`, `{{slot}}` placeholders, a content hash per prompt.

A prompt NAME is two files, `NAME.system.md` and `NAME.user.md`. They are found in the source
checkout's `prompts/` or, in an installed wheel, in `grader/_prompts/` (pyproject force-includes
them). The hash covers both files, so a grade records exactly which wording produced it.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from grader.errors import ConfigError

_SLOT = re.compile(r"\{\{\s*([a-z_]+)\s*\}\}")
PROMPT_HASH_LENGTH = 16


def prompt_dirs() -> list[Path]:
    """Where templates are looked up, in order: the installed copy, then the source checkout."""
    package = Path(__file__).resolve().parent.parent
    return [package / "_prompts", package.parent / "prompts"]


@dataclass(frozen=True)
class PromptTemplate:
    """A system + user template pair with `{{slot}}` placeholders."""

    name: str
    system: str
    user: str

    @cached_property
    def hash(self) -> str:
        """SHA-256 prefix of the template text (recorded with every grade)."""
        digest = hashlib.sha256(f"{self.name}\0{self.system}\0{self.user}".encode())
        return digest.hexdigest()[:PROMPT_HASH_LENGTH]

    @cached_property
    def slots(self) -> set[str]:
        return set(_SLOT.findall(self.system)) | set(_SLOT.findall(self.user))

    def render(self, **values: str) -> list[dict[str, str]]:
        """The chat messages with every slot filled; a missing or unknown slot is an error."""
        missing = self.slots - set(values)
        extra = set(values) - self.slots
        if missing or extra:
            raise ValueError(
                f"prompt {self.name!r}: missing slots {sorted(missing)}, unknown {sorted(extra)}"
            )

        def fill(text: str) -> str:
            # One pass, so slot-like text inside a value is never expanded again.
            return _SLOT.sub(lambda m: values[m.group(1)], text)

        return [
            {"role": "system", "content": fill(self.system)},
            {"role": "user", "content": fill(self.user)},
        ]


def load_prompt(name: str, directories: list[Path] | None = None) -> PromptTemplate:
    """Load prompt `name` from the first directory that has both of its files."""
    for directory in directories or prompt_dirs():
        system = directory / f"{name}.system.md"
        user = directory / f"{name}.user.md"
        if system.is_file() and user.is_file():
            return PromptTemplate(
                name=name,
                system=system.read_text(encoding="utf-8"),
                user=user.read_text(encoding="utf-8"),
            )
    raise ConfigError(f"prompt template {name!r} not found (looked for prompts/{name}.system.md)")


# Anything that could read as a tag opening or closing: `<`, its look-alikes, optional `/` and
# spaces, then a letter. Neutralised by swapping the bracket for a visibly different one.
_TAG_OPEN = re.compile(r"[<\uFF1C\uFE64\u2329\u3008\u27E8]\s*/?\s*(?=[^\W\d])", re.UNICODE)
_FENCE = re.compile(r"`{3,}|~{3,}")


def neutralize_delimiters(text: str) -> str:
    """Learner text made unable to open or close a prompt section.

    Tag-like sequences (`</student_answer>`, `<system>`, full-width look-alikes, ...) lose their
    angle bracket, and code fences are broken, so the only section boundaries in a rendered prompt
    are the template's own.
    """
    text = unicodedata.normalize("NFC", text)
    text = _TAG_OPEN.sub(lambda m: "\u2039" + m.group(0)[1:], text)
    return _FENCE.sub(lambda m: "\u2032" * len(m.group(0)), text)


def answer_tag(answer: str) -> str:
    """A per-answer delimiter name: fixed for a given text (so caching works), unguessable from it.

    Finding text that contains its own tag would need a SHA-256 fixed point; neutralisation makes
    that moot anyway, so this is a second, independent guard.
    """
    return "student_answer_" + hashlib.sha256(answer.encode()).hexdigest()[:8]
