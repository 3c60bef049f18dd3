from django.conf import settings
from django.db import models


def user_reference(*, optional: bool = False) -> models.ForeignKey:
    """A foreign key naming the person who did something (or, for a message, received it).

    PROTECT, since a person named on a record is deactivated, never deleted; no reverse accessor
    (related_name "+"), since nothing reads these rows from the user's side. `optional` when the
    system (a command, a task, the importer) may do it too, or nobody has yet.
    """
    return models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=optional,
        blank=optional,
        on_delete=models.PROTECT,
        related_name="+",
    )


class WorkerHeartbeat(models.Model):
    """Written by a beat task; /healthz and the pages show its age to tell if workers run."""

    name = models.CharField(max_length=100, unique=True)
    last_seen = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} @ {self.last_seen:%Y-%m-%d %H:%M:%S}"


class Submission(models.Model):
    """One form submission that created something, by the token its form carried (a hidden
    field): the same POST sent twice (a double click, a resent request) finds its row and is
    answered with what the first made instead of making it again. Rows are tiny and kept."""

    token = models.UUIDField(unique=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    result_url = models.CharField(max_length=300, blank=True)

    def __str__(self) -> str:
        return f"{self.token} -> {self.result_url}"


class UserProfile(models.Model):
    """What TrustDesk keeps about a person beyond Django's user: the time zone pages show times
    in (an IANA name, e.g. Europe/Berlin; empty until the browser or the person sets it), and
    whether they get e-mail about what is theirs (docs/design.md section 12; on until they say
    otherwise, so a person without a profile gets it too)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="trustdesk_profile"
    )
    time_zone = models.CharField(max_length=64, blank=True)
    email_notifications = models.BooleanField(default=True)

    def __str__(self) -> str:
        return f"{self.user} ({self.time_zone or 'UTC'})"
