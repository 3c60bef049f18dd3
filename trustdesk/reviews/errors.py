"""The one error type of the reviews app: a refused step, naming every problem in plain words.

It is a GateError, so anything that handles the lifecycle's refusals handles these too.
"""

from __future__ import annotations

from trustdesk.incidents.errors import GateError


class ReviewError(GateError):
    """A refused review step; `problems` names every reason."""
