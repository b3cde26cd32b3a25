"""A JSON object's members, each named once: the one `object_pairs_hook` that both the
API's bodies (`service.json_body`) and the partners' answers (`connectors.wire`) are read
with.

Python's `json` keeps the last of two members with the same name, while whoever wrote or
relayed the text may mean the first: such an object is ambiguous, and refused.
"""

from typing import Any


class RepeatedMember(ValueError):
    """A JSON object names `name` twice."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An `object_pairs_hook` for `json.loads`: the object as a dict, or `RepeatedMember`
    naming the first member given twice."""
    members = dict(pairs)
    if len(members) != len(pairs):
        seen: set[str] = set()
        for name, _ in pairs:
            if name in seen:
                raise RepeatedMember(name)
            seen.add(name)
    return members
