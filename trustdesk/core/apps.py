from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "trustdesk.core"
    label = "core"
    verbose_name = "TrustDesk core"

    def ready(self) -> None:
        from trustdesk.core import checks  # noqa: F401  (registers system checks)
