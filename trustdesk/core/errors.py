"""The one refusal type: every app's refused action raises a subclass of `Refused`.

Views turn it into messages on the form (never a 500); commands print its problems; the API answers
with them as JSON.
"""

from __future__ import annotations


class Refused(Exception):
    """A refused action. `problems` lists every unmet gate or bad input, in plain words."""

    #: The HTTP status a page or API answer should carry for this refusal.
    status_code = 422

    def __init__(self, problems: list[str] | str):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("; ".join(self.problems))

    @classmethod
    def raise_if(cls, problems: list[str]) -> None:
        """Refuse with every problem gathered, if there is any; otherwise do nothing."""
        if problems:
            raise cls(problems)
