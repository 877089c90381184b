"""YAML the user owns (decks, proposals, edits), read strictly: a key given twice is an error.

PyYAML keeps the last of two equal keys without a word, so a second `cards:` in a deck would drop
every card under the first on the next save. `load` refuses it, naming both lines.
"""

from __future__ import annotations

from typing import Any

import yaml

MERGE_TAG = "tag:yaml.org,2002:merge"


class DuplicateKeyError(yaml.constructor.ConstructorError):
    """A mapping that gives one key twice; `problem_mark` is the second one."""


class _StrictLoader(yaml.SafeLoader):
    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == MERGE_TAG:  # `<<: *anchor` merges; its keys may be overridden
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: SafeLoader's own error follows
                break
            line = key_node.start_mark.line + 1
            if first is not None:
                raise DuplicateKeyError(
                    None,
                    None,
                    f"duplicate key {key!r} (first at line {first})",
                    key_node.start_mark,
                )
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def load(text: str) -> Any:
    """`yaml.safe_load`, but a mapping that repeats a key raises DuplicateKeyError."""
    return yaml.load(text, Loader=_StrictLoader)


def error_at(exc: yaml.YAMLError | RecursionError) -> tuple[int, str]:
    """The line (1 when unknown) and a one-line message for a YAML failure."""
    if isinstance(exc, RecursionError):
        return 1, "YAML nested too deeply"
    if isinstance(exc, DuplicateKeyError) and exc.problem_mark is not None:
        return exc.problem_mark.line + 1, str(exc.problem)
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        return line, f"YAML syntax error: {exc.problem or exc.context}"
    return 1, "YAML error: " + " ".join(str(exc).split())


def parse(text: str, path: object) -> Any:
    """`load`, with any failure as one InputError naming `path` and the line."""
    from grader.errors import InputError

    try:
        return load(text)
    except (yaml.YAMLError, RecursionError) as exc:
        line, message = error_at(exc)
        raise InputError(message, path=path, line=line) from None
