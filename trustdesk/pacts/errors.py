"""The one error type of the pacts app (STYLE.md: one error type per app)."""

from __future__ import annotations


class PactError(Exception):
    """A refused pact operation. `problems` lists every reason, in plain words.

    Problems about a document name the path of the offending value first
    (`spec.clauses[1].objective.op: must be one of <, <=, ==, >=, >`).
    """

    def __init__(self, problems: list[str] | str):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("; ".join(self.problems))


class DocumentError(PactError):
    """A pact document that does not parse or does not validate. Nothing was stored."""
