from django.apps import AppConfig


class A1zapConfig(AppConfig):
    name = "a1zap"
    verbose_name = "A1Zap"
