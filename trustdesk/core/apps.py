from django.apps import AppConfig, apps


class CoreConfig(AppConfig):
    name = "trustdesk.core"
    label = "core"
    verbose_name = "TrustDesk core"

    def ready(self) -> None:
        from trustdesk.core import checks  # noqa: F401  (registers system checks)
        from trustdesk.core.hooks import register_declared

        # Every app's declared answers to the extension points (core.hooks).
        register_declared(apps.get_app_configs())
