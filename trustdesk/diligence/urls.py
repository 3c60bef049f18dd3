from django.urls import path

from trustdesk.diligence import views

urlpatterns = [
    path("diligence/", views.diligence_index, name="diligence"),
]
