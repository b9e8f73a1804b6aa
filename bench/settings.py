"""The bench's settings: the product's (`a1zap.settings.base`), with the floors' routes."""

from a1zap.settings.base import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
