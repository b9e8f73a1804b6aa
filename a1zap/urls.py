"""Top-level routes: the admin, health probes, webhooks, the versioned API and its schema."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from a1zap import health
from accounts import webhooks as accounts_webhooks
from invoicing import webhooks as billing_webhooks

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("stack-auth/webhook/", accounts_webhooks.stack_auth_webhook),
    path("stripe/webhook/", billing_webhooks.stripe_webhook),
    path("api/v1/", include("a1zap.api_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
]

handler400 = "core.errors.bad_request"
handler404 = "core.errors.page_not_found"
handler500 = "core.errors.server_error"
