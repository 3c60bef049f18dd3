from django.apps import AppConfig


class PactsConfig(AppConfig):
    name = "trustdesk.pacts"
    label = "pacts"
    verbose_name = "Agents and pacts"
