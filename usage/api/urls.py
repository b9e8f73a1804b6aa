"""Routes of the usage API, included under /api/v1/."""

from django.urls import path

from usage.api import views

urlpatterns = [
    path("usage/events/", views.UsageEventsView.as_view(), name="usage-events"),
    path("usage/summary/", views.UsageSummaryView.as_view(), name="usage-summary"),
    path("agents/<uuid:agent_id>/usage/", views.AgentUsageView.as_view(), name="agent-usage"),
]
