"""Problems found in rules files, and the one exception that carries them.

Every problem names a file and a line so IT staff can fix a rules file without reading code;
a file is checked completely and all its problems are reported together, because fixing one
mistake per reload is slow and frustrating.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One mistake in a rules file: where it is (line 0 means the whole file) and what it is."""

    source: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.source}:{self.line}: {self.message}"


class RulesError(Exception):
    """Rules could not be loaded; `problems` lists every mistake found, in file order."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        if not self.problems:
            raise ValueError("RulesError needs at least one problem")
        super().__init__(str(self))

    def __str__(self) -> str:
        return "\n".join(str(problem) for problem in self.problems)

    def __reduce__(self) -> tuple[type[RulesError], tuple[tuple[Problem, ...]]]:
        # Exceptions pickle through `args`; ours are built from problems, not from a message.
        return (RulesError, (self.problems,))
