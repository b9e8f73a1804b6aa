"""factory_boy factories for the domain models, used across the test suite."""

import datetime as dt
import itertools
from typing import Any

import factory

from agents.models import A1Agent, AgentType, App
from billing.models import UserSubscription
from conversations.models import AgentConversation, Message
from integrations.models import AgentIntegration
from usage.models import AgentUsage
from usage.services import UsageEvent, usage_ingest


class AppFactory(factory.django.DjangoModelFactory[App]):
    class Meta:
        model = App


class AgentFactory(factory.django.DjangoModelFactory[A1Agent]):
    """An agent with its app, both pointing at each other as the service creates them."""

    class Meta:
        model = A1Agent
        skip_postgeneration_save = True

    owner_id = factory.Sequence(lambda n: f"user_{n}")
    app = factory.SubFactory(AppFactory)
    name = factory.Sequence(lambda n: f"Agent {n}")
    handle = factory.Sequence(lambda n: f"agent_{n}")
    agent_type = AgentType.PERSONAL

    @factory.post_generation
    def link_app(agent: A1Agent, create: bool, extracted: object, **kwargs: object) -> None:  # noqa: N805
        if create:
            App.objects.filter(pk=agent.app_id).update(agent_id=agent.pk)
            agent.app.agent_id = agent.pk


class SubscriptionFactory(factory.django.DjangoModelFactory[UserSubscription]):
    class Meta:
        model = UserSubscription

    user_id = factory.Sequence(lambda n: f"user_{n}")


class UsageFactory(factory.django.DjangoModelFactory[AgentUsage]):
    class Meta:
        model = AgentUsage

    agent = factory.SubFactory(AgentFactory)
    date = factory.LazyFunction(lambda: dt.datetime.now(dt.UTC).date())


_event_numbers = itertools.count()


def messages_ingested(agent: A1Agent, *, day: dt.date, messages: int) -> None:
    """Count `messages` for the agent on `day` (noon UTC) through the real ingestion, so the
    day's `agent_usage` row and the owner's monthly counter (what the close bills) move
    together, as in production."""
    at = dt.datetime.combine(day, dt.time(12), tzinfo=dt.UTC)
    event_id = f"test-event-{next(_event_numbers)}"
    usage_ingest(agent_id=agent.pk, events=[UsageEvent(event_id, at, messages=messages)])


class ConversationFactory(factory.django.DjangoModelFactory[AgentConversation]):
    class Meta:
        model = AgentConversation

    agent = factory.SubFactory(AgentFactory)
    channel = "web"


class MessageFactory(factory.django.DjangoModelFactory[Message]):
    class Meta:
        model = Message

    conversation = factory.SubFactory(ConversationFactory)
    agent = factory.LazyAttribute(lambda message: message.conversation.agent)
    role = "user"
    content = "hello"


class IntegrationFactory(factory.django.DjangoModelFactory[AgentIntegration]):
    class Meta:
        model = AgentIntegration

    agent = factory.SubFactory(AgentFactory)
    provider = "slack"


def staff_user(username: str = "support", *, role: str = "support") -> Any:
    """A Django staff account in the `support` (or `admin`) group, as support staff have."""
    from django.contrib.auth.models import Group, User

    user = User.objects.create_user(username, password="pw", is_staff=True)
    user.groups.add(Group.objects.get_or_create(name=role)[0])
    return user
