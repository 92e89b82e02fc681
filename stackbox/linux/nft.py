"""nftables: whole tables written as text and replaced in one atomic ``nft -f`` (a
table is never seen half-updated), inside a namespace or in the host's."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from stackbox.linux import run


def table(family: str, name: str, chains: Mapping[str, tuple[str, Sequence[str]]]) -> str:
    """A table's text: ``chains`` maps a chain name to (its hook line, its rules)."""
    lines = [f"table {family} {name} {{"]
    for chain, (hook, rules) in chains.items():
        lines.append(f"  chain {chain} {{")
        lines.append(f"    {hook}")
        lines.extend(f"    {rule}" for rule in rules)
        lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"


def replace(text: str, *, ns: str | None = None) -> None:
    """Load ``text`` (one table), replacing the table of that name if it exists."""
    header = text.split("{", 1)[0].split()
    family, name = header[1], header[2]
    # Declaring the table first makes the delete valid when it does not exist yet.
    script = f"table {family} {name}\ndelete table {family} {name}\n{text}"
    prefix = ["ip", "netns", "exec", ns] if ns else []
    run.run([*prefix, "nft", "-f", "-"], stdin=script)
