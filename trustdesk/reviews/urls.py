from django.urls import path

from trustdesk.reviews import views

urlpatterns = [
    path("reviews/", views.reviews_index, name="reviews"),
]
