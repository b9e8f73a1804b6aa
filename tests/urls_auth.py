"""Test-only routes: a view that needs an authenticated owner, next to the real routes."""

from django.urls import path
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from a1zap.urls import urlpatterns as project_urlpatterns
from accounts.authentication import StackAuthAuthentication
from core.principals import owner_of


class WhoAmI(APIView):
    """Answer with the id of the authenticated owner."""

    # Named here rather than taken from the settings so these tests check this class alone.
    authentication_classes = [StackAuthAuthentication]
    permission_classes = [IsAuthenticated]

    def get(self, request: Request) -> Response:
        owner = owner_of(request.user)
        return Response({"owner_id": owner.id if owner else None})


urlpatterns = [
    path("test/whoami/", WhoAmI.as_view(), name="test-whoami"),
    *project_urlpatterns,
]
