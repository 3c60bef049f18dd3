from django.apps import AppConfig


class MetricsConfig(AppConfig):
    name = "trustdesk.metrics"
    label = "metrics"
    verbose_name = "Metrics and trust"
    # The agent page (pacts app) shows the trust panel (core.hooks).
    hooks = {"pacts.agent_page_context": "trustdesk.metrics.panels.agent_trust_context"}
