from django.apps import AppConfig


class AgentTemplatesConfig(AppConfig):
    name = "agent_templates"
    verbose_name = "Agent templates"
