from django.apps import AppConfig


class DiligenceConfig(AppConfig):
    name = "trustdesk.diligence"
    label = "diligence"
    verbose_name = "Diligence"
