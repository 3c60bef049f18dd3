"""The review part of the incident page: operating-model changes, re-entry conditions, the
request-review and decision forms, attestations and the decision record.

The incidents page view calls `incident_panel_context` and includes
`reviews/_incident_panel.html`; the reviews app owns both, so the two apps meet at one seam.
"""

from __future__ import annotations


def incident_panel_context(incident, user) -> dict:
    """Context for reviews/_incident_panel.html. Must run a fixed number of queries."""
    return {}
