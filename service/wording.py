"""Counted nouns in what the command line prints: "1 household", "2 households"."""


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """`count` and `noun`, or `nouns` (default: `noun` + "s") unless `count` is 1."""
    return f"{count} {noun}" if count == 1 else f"{count} {nouns or noun + 's'}"
