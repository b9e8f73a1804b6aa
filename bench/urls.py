"""The bench's URLconf: the product's routes plus the floors of `bench.floors`."""

from django.urls import path

from a1zap.urls import handler400, handler404, handler500
from a1zap.urls import urlpatterns as product_urlpatterns
from bench import floors

__all__ = ["handler400", "handler404", "handler500", "urlpatterns"]

urlpatterns = [
    path("bench/floor/django/agents/", floors.django_agents),
    path("bench/floor/django/conversations/<uuid:conversation_id>/messages/",
         floors.django_messages),
    path("bench/floor/drf/agents/", floors.DrfAgents.as_view()),
    path("bench/floor/drf/conversations/<uuid:conversation_id>/messages/",
         floors.DrfMessages.as_view()),
    *product_urlpatterns,
]  # fmt: skip
