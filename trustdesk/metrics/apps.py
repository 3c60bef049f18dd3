from django.apps import AppConfig


class MetricsConfig(AppConfig):
    name = "trustdesk.metrics"
    label = "metrics"
    verbose_name = "Metrics and trust"
