from django.apps import AppConfig


class ReviewsConfig(AppConfig):
    name = "trustdesk.reviews"
    label = "reviews"
    verbose_name = "Reviews and recovery"
    # The incident page shows the reviews panel; imported history gets its reviews rows (hooks).
    hooks = {
        "incidents.page_context": "trustdesk.reviews.panels.incident_panel_context",
        "incidents.imported": "trustdesk.reviews.actions.record_imported_history",
    }
