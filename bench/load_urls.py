"""The throughput benchmark's URLs: the app's, the signed-in bare view and shell of the page
benchmark (`bench/urls.py`) and the no-query bare view of the scope benchmark."""

from django.urls import path

from bench import scope_urls
from bench.urls import urlpatterns as page_urlpatterns

urlpatterns = [path("bench/bare-api/", scope_urls.bare), *page_urlpatterns]
