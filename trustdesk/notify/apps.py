from django.apps import AppConfig


class NotifyConfig(AppConfig):
    name = "trustdesk.notify"
    label = "notify"
    verbose_name = "Webhooks and notifications"

    def ready(self) -> None:
        # core.effects finds fan_out by name in the registry; Celery's autodiscovery only runs in
        # workers, so register the tasks in every process (web, commands, tests) here.
        from trustdesk.notify import tasks  # noqa: F401
