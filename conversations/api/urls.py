"""Routes of the conversations API, included under /api/v1/."""

from django.urls import URLPattern, URLResolver, path
from rest_framework.routers import DefaultRouter

from conversations.api import views

router = DefaultRouter()
router.include_root_view = False
router.register("conversations", views.ConversationViewSet, basename="conversation")

urlpatterns: list[URLPattern | URLResolver] = [
    path(
        "conversations/<uuid:conversation_id>/messages/",
        views.ConversationMessagesView.as_view(),
        name="conversation-messages",
    ),
    path(
        "conversations/<uuid:conversation_id>/export/",
        views.ConversationExportView.as_view(),
        name="conversation-export",
    ),
    *router.urls,
]
