from django.apps import AppConfig


class ReviewsConfig(AppConfig):
    name = "trustdesk.reviews"
    label = "reviews"
    verbose_name = "Reviews and recovery"
