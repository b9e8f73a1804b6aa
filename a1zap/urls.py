"""Top-level routes: the admin, health probes, the versioned API and its schema."""

from django.contrib import admin
from django.urls import path

from a1zap import health

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
]
