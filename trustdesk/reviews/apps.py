from django.apps import AppConfig


class ReviewsConfig(AppConfig):
    name = "trustdesk.reviews"
    label = "reviews"
    verbose_name = "Reviews and recovery"

    def ready(self) -> None:
        # The incidents app shows the reviews panel and hands over imported history by hook.
        from trustdesk.core import hooks
        from trustdesk.reviews.actions import record_imported_history
        from trustdesk.reviews.panels import incident_panel_context

        hooks.register(hooks.INCIDENT_PAGE, incident_panel_context)
        hooks.register(hooks.INCIDENT_IMPORTED, record_imported_history)
