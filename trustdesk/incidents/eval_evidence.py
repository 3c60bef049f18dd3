"""The evaluation log as evidence of the breach it measured (docs/design.md section 14).

When a failing evaluation that came from a log file (pacts.EvaluationLog) opens an incident or
joins one, the log is attached to the incident as `evaluation_result` evidence, through the one
function that adds evidence (lifecycle.add_evidence), so it is hashed, chained and downloadable
like any other item. The bytes are already in the content-addressed store: the same path is reused.
"""

from __future__ import annotations

import logging

from django.contrib.auth.models import AbstractBaseUser
from django.core.files import File

from trustdesk.incidents.models import Evidence, Incident
from trustdesk.pacts.models import EvidenceKind

logger = logging.getLogger(__name__)


def attach_evaluation_log(
    incident: Incident, evaluation, *, by: AbstractBaseUser | None = None
) -> Evidence | None:
    """Attach the log that produced `evaluation` to `incident`, once. Returns the new evidence, or
    None when the evaluation came from no log or the incident already holds that file. The caller
    holds the transaction of the breach (breach.open_incident_for_breach)."""
    from trustdesk.incidents import evidence as store
    from trustdesk.incidents.lifecycle import add_evidence

    log = evaluation.log if evaluation.log_id else None
    if log is None:
        return None
    if Evidence.objects.filter(incident=incident, sha256=log.sha256).exists():
        return None
    try:
        path = store.absolute_path(log.storage_path)
        fh = path.open("rb")
    except (OSError, ValueError):
        # The evaluation stands; only its file is gone. Say so rather than lose the breach.
        logger.warning("evaluation log %s is missing from the evidence store", log.sha256)
        return None
    clause = evaluation.clause
    description = (
        f"{log.get_format_display()} that measured {clause.metric} = {evaluation.value_text} "
        f"for {clause.version.pact.key}#{clause.key} (source {evaluation.source}, "
        f"evaluation {evaluation.external_id})."
    )
    with fh:
        return add_evidence(
            incident,
            by=by,
            expected_version=None,
            kind=EvidenceKind.EVALUATION_RESULT,
            description=description,
            upload=File(fh, name=log.download_name),
        )
