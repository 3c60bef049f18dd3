from django.apps import AppConfig


class MetricsConfig(AppConfig):
    name = "trustdesk.metrics"
    label = "metrics"
    verbose_name = "Metrics and trust"

    def ready(self) -> None:
        # The agent page (pacts app) shows the trust panel through this hook.
        from trustdesk.core import hooks
        from trustdesk.metrics.panels import agent_trust_context

        hooks.register(hooks.AGENT_PAGE, agent_trust_context)
