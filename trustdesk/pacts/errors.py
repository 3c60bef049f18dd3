"""The one error type of the pacts app (STYLE.md: one error type per app)."""

from __future__ import annotations

from trustdesk.core.errors import Refused


class PactError(Refused):
    """A refused pact operation. `problems` lists every reason, in plain words.

    Problems about a document name the path of the offending value first
    (`spec.clauses[1].objective.op: must be one of <, <=, ==, >=, >`).
    """


class DocumentError(PactError):
    """A pact document that does not parse or does not validate. Nothing was stored."""
