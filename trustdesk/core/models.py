from django.db import models


class WorkerHeartbeat(models.Model):
    """Written by a beat task; /healthz and the pages show its age to tell if workers run."""

    name = models.CharField(max_length=100, unique=True)
    last_seen = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} @ {self.last_seen:%Y-%m-%d %H:%M:%S}"
