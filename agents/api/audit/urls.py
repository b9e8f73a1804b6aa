"""Routes of the audit API, included under /api/v1/."""

from django.urls import URLPattern, URLResolver, path

from agents.api.audit import views

urlpatterns: list[URLPattern | URLResolver] = [
    path("agents/<uuid:agent_id>/audit/", views.AgentAuditView.as_view(), name="agent-audit"),
]
