"""Generate realistic demo data at scale, for demos and benchmarks (`manage.py generate_demo_data`).

What one run writes, for N users with M agents each over D days ending `end` (yesterday by
default):

- `stack_users`: N owners (`<first>.<last>.<n>@s<seed>.demo.a1zap.test`);
- `user_subscriptions`: one per owner, across plans (an owner's plan always fits M agents,
  except the few cancelled ones, who are back on free and over its limits, as after a
  downgrade), mostly active, some trialing, past due or cancelled; no Stripe customer, so
  a monthly close records overage but never calls Stripe for demo users;
- `apps` and `a1_agents`: M pairs per owner, pointing at each other; handles
  `<word>_<seed>_<user>_<agent>` in base 36, lower case, so unique without regard to case;
  app keys are random and unknown to anyone (rotate a key through the API to use an app);
  contact details (Fernet ciphertext) only for one agent in `encrypt_every`, because
  encrypting is slow; most agents are active, some paused or archived (stopped at the end of
  the window, so they have the same history as the others);
- `agent_usage`: one row per agent and day (N x M x D), with the plan's unit prices in
  `estimated_cost`; free owners stay under their hard cap, about one pro owner in eight goes
  over the included messages (what the monthly close bills);
- `user_monthly_usage`: the running monthly counters that match those rows;
- `agent_conversations` and `messages`: K messages per agent and day, but only on the last
  `message_days` days of the window (3 by default; usage covers all D days), in
  conversations of up to six messages.

Rows are streamed into PostgreSQL with COPY, a chunk of owners per transaction: memory stays
flat whatever N is, and an interrupted run keeps whole owners only. Every value comes from a
random generator seeded with (seed, owner number), so a seed gives the same rows every time
(except app key hashes and ciphertext, which are random by design). Owners are numbered per
seed: a second run with the same seed refuses, unless `append` is set, which numbers the new
owners after the existing ones (new ids and handles).
"""

import datetime as dt
import json
import math
import random
import secrets
import string
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import connection, models, transaction
from django.db.models import Model

from accounts.models import StackUser
from agents.app_keys import APP_KEY_PREFIX, VISIBLE_PREFIX_LENGTH
from agents.models import A1Agent, App
from billing.models import UNLIMITED, SubscriptionPlan, UserSubscription
from conversations.models import AgentConversation, Message
from core.encryption import encrypt, lookup_hash
from usage.models import AgentUsage, UserMonthlyUsage

# Handles end in `_<seed>_<user>_<agent>` (base 36), which bounds these.
MAX_SEED = 36**4 - 1
MAX_AGENTS_PER_USER = 36**2 - 1
MAX_USER_NUMBER = 36**5 - 1
MESSAGES_PER_CONVERSATION = 6
DEFAULT_CHUNK_AGENTS = 5_000
DEMO_EMAIL_DOMAIN = "demo.a1zap.test"
# One lock for all runs: two runs at once could number owners the same.
ADVISORY_LOCK_KEY = int.from_bytes(b"a1zapdem", "big")

FIRST_NAMES = (
    "Ada", "Alan", "Amara", "Ben", "Carla", "Chen", "Dara", "Diego", "Elena", "Emeka", "Farah",
    "Felix", "Grace", "Hana", "Ines", "Ivan", "Jonas", "Kemi", "Lars", "Leila", "Maya", "Mateo",
    "Nadia", "Noah", "Olu", "Priya", "Quinn", "Rosa", "Sami", "Sofia", "Tariq", "Uma", "Vera",
    "Wei", "Yara", "Zoe",
)  # fmt: skip
LAST_NAMES = (
    "Adeyemi", "Bauer", "Costa", "Dubois", "Eriksen", "Fischer", "Garcia", "Haddad", "Ito",
    "Jensen", "Kowalski", "Lopez", "Moreau", "Nakamura", "Okafor", "Patel", "Quist", "Rossi",
    "Schmidt", "Tanaka", "Usman", "Varga", "Weber", "Xu", "Yilmaz", "Zhang",
)  # fmt: skip
ADJECTIVES = (
    "swift", "calm", "bright", "clever", "bold", "kind", "quick", "sunny", "lucid", "brave",
    "keen", "noble", "witty", "merry", "eager", "gentle", "nimble", "steady",
)  # fmt: skip
NOUNS = (
    "otter", "falcon", "maple", "comet", "harbor", "lynx", "cedar", "atlas", "pixel", "ember",
    "tide", "quill", "orbit", "sparrow", "summit", "beacon", "willow", "delta",
)  # fmt: skip
ROLES = (
    "Sales Assistant", "Support Desk", "Booking Agent", "Tutor", "Concierge", "Recruiter",
    "Research Helper", "Shop Assistant", "Coach", "Receptionist",
)  # fmt: skip
USER_LINES = (
    "Hi, are you open tomorrow?", "Can I change my booking to Friday?",
    "What does the pro plan include?", "My order has not arrived yet.",
    "Could you send me the invoice again?", "Is there a discount for students?",
    "How do I reset my password?", "Thanks, that helps a lot!",
)  # fmt: skip
AGENT_LINES = (
    "Hello! Yes, we open at 9:00 tomorrow.", "Done: your booking is now on Friday at 10:00.",
    "Pro includes five personal and five work agents.", "Let me check the tracking number.",
    "I have sent the invoice to your email address.", "Students get 20% off with a valid ID.",
    "You can reset it from the sign-in page.", "You're welcome! Anything else?",
)  # fmt: skip
CHANNELS = ("web", "whatsapp", "email", "sms", "slack", "discord", "telegram", "api")
CHANNEL_WEIGHTS = (50, 20, 10, 5, 5, 4, 4, 2)
BASE36 = string.digits + string.ascii_lowercase

# UUID version 4 layout, applied to 128 random bits.
_UUID_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_UUID_SET = (0x4000 << 64) | (0x8000 << 48)
_COPY_BUFFER_LINES = 2_000


@dataclass(frozen=True)
class DemoOptions:
    users: int
    agents_per_user: int
    days: int
    messages_per_day: int = 10
    message_days: int = 3
    seed: int = 1
    end: dt.date | None = None
    encrypt_every: int = 1_000
    chunk_agents: int = DEFAULT_CHUNK_AGENTS

    def __post_init__(self) -> None:
        problems = []
        if self.users < 1:
            problems.append("users must be at least 1")
        if not 1 <= self.agents_per_user <= MAX_AGENTS_PER_USER:
            problems.append(f"agents per user must be 1 to {MAX_AGENTS_PER_USER}")
        if self.days < 0 or self.messages_per_day < 0 or self.message_days < 0:
            problems.append("days and message counts cannot be negative")
        if not 0 <= self.seed <= MAX_SEED:
            problems.append(f"the seed must be 0 to {MAX_SEED}")
        if self.encrypt_every < 0 or self.chunk_agents < 1:
            problems.append("encrypt_every cannot be negative and chunk_agents must be positive")
        if problems:
            raise ValueError("; ".join(problems) + ".")

    @property
    def end_date(self) -> dt.date:
        return self.end or (dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1))

    @property
    def conversation_days(self) -> int:
        return min(self.days, self.message_days) if self.messages_per_day else 0

    def expected_rows(self, users: int | None = None) -> dict[str, int]:
        """How many rows a run writes per table (all of them, or for `users` owners)."""
        owners = self.users if users is None else users
        agents = owners * self.agents_per_user
        agent_days = agents * self.conversation_days
        return {
            "stack_users": owners,
            "user_subscriptions": owners,
            "apps": agents,
            "a1_agents": agents,
            "agent_usage": agents * self.days,
            "agent_conversations": agent_days
            * math.ceil(self.messages_per_day / MESSAGES_PER_CONVERSATION),
            "messages": agent_days * self.messages_per_day,
        }


@dataclass
class DemoResult:
    seed: int
    first_user: int
    users: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    encrypted_agents: int = 0
    seconds: float = 0.0


class DemoDataExists(Exception):
    """Demo owners of this seed are already there and `append` was not asked for."""

    def __init__(self, seed: int, existing: int) -> None:
        super().__init__(
            f"Demo data for seed {seed} already exists ({existing} users): pass --append to add"
            " more users after them, or choose another --seed."
        )
        self.existing = existing


class DemoRunInProgress(Exception):
    """Another generate_demo_data run holds the lock."""


@dataclass(frozen=True)
class _Plan:
    id: str
    personal: int
    work: int
    included: int | None
    hard_cap: bool
    price_micro: tuple[int, int, int]  # per message, API call, compute second; 1e-6 USD


@dataclass(frozen=True)
class _Agent:
    number: int
    id: str
    app_id: str
    handle: str
    agent_type: str
    status: str
    weight: float


@dataclass(frozen=True)
class _User:
    number: int
    id: str
    plan: _Plan
    monthly_messages: int
    agents: tuple[_Agent, ...]


def demo_email_domain(seed: int) -> str:
    return f"s{seed}.{DEMO_EMAIL_DOMAIN}"


def demo_existing_users(seed: int) -> int:
    """How many demo owners of this seed exist (they are numbered 0 to that minus one)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM stack_users WHERE email LIKE %s",
            ["%@" + demo_email_domain(seed)],
        )
        return int(cursor.fetchone()[0])


def _base36(number: int) -> str:
    digits = ""
    while True:
        number, digit = divmod(number, 36)
        digits = BASE36[digit] + digits
        if not number:
            return digits


def demo_handle(word: str, seed: int, user: int, agent: int) -> str:
    """A handle unique to (seed, user, agent): the suffix alone tells them apart."""
    suffix = f"_{_base36(seed)}_{_base36(user)}_{_base36(agent)}"
    return word[: 30 - len(suffix)] + suffix


def _uuid(rng: random.Random) -> str:
    h = f"{(rng.getrandbits(128) & _UUID_CLEAR) | _UUID_SET:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _text(value: str | None) -> str:
    """A value in COPY's text format."""
    if value is None:
        return "\\N"
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
        value = (
            value.replace("\\", "\\\\")
            .replace("\t", "\\t")
            .replace("\n", "\\n")
            .replace("\r", "\\r")
        )
    return value


def _timestamp(value: dt.datetime) -> str:
    return value.isoformat()


def _micro(price: Decimal | None) -> int:
    return int((price or Decimal(0)) * 1_000_000)


def _plans() -> dict[str, _Plan]:
    return {
        plan.id: _Plan(
            id=plan.id,
            personal=plan.max_personal_agents,
            work=plan.max_work_agents,
            included=plan.max_messages_per_month,
            hard_cap=plan.messages_hard_cap,
            price_micro=(
                _micro(plan.price_per_message),
                _micro(plan.price_per_api_call),
                _micro(plan.price_per_compute_second),
            ),
        )
        for plan in SubscriptionPlan.objects.all()
    }


def _fits(plan: _Plan, agents: int) -> bool:
    if UNLIMITED in (plan.personal, plan.work):
        return True
    return agents <= plan.personal + plan.work


class _Generator:
    """Rows of one run; every owner's rows come from generators seeded with its number."""

    PLAN_WEIGHTS = {"free": 60, "pro": 30, "enterprise": 10}

    def __init__(self, options: DemoOptions, plans: dict[str, _Plan], can_encrypt: bool) -> None:
        self.options = options
        self.plans = plans
        self.can_encrypt = can_encrypt and options.encrypt_every > 0
        self.end = options.end_date
        self.first_day = self.end - dt.timedelta(days=options.days - 1)
        self.domain = demo_email_domain(options.seed)
        self.encrypted = 0
        eligible = [
            plan
            for plan in plans.values()
            if plan.id in self.PLAN_WEIGHTS and _fits(plan, options.agents_per_user)
        ]
        if not eligible:
            raise ValueError("No plan allows that many agents per user.")
        self.eligible = eligible
        self.eligible_weights = [self.PLAN_WEIGHTS[plan.id] for plan in eligible]
        days = [self.first_day + dt.timedelta(days=n) for n in range(options.days)]
        self.days = [
            (day, day.isoformat(), f"{day.isoformat()} 23:00:00+00", f"{day:%Y-%m}-01")
            for day in days
        ]

    def _rng(self, user: int, stream: str) -> random.Random:
        # Reproducible on purpose: demo data, not secrets.
        return random.Random(f"a1zap-demo/{self.options.seed}/{user}/{stream}")  # noqa: S311

    # --- owners and agents -------------------------------------------------------------------

    def user(self, number: int) -> tuple[_User, list[str], list[str], list[str], list[str]]:
        """The owner, and its COPY lines for stack_users, user_subscriptions, apps, a1_agents."""
        options = self.options
        rng = self._rng(number, "profile")
        user_id = _uuid(rng)
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        end_at = dt.datetime.combine(self.end, dt.time(23, 0), tzinfo=dt.UTC)
        first_seen = end_at - dt.timedelta(days=options.days + rng.randint(1, 365))
        last_seen = end_at - dt.timedelta(hours=rng.randint(0, 72))
        email = f"{first}.{last}.{number}@{self.domain}".lower()
        user_line = "\t".join(
            [user_id, email, f"{first} {last}", _timestamp(first_seen), _timestamp(last_seen),
             _timestamp(last_seen)]
        )  # fmt: skip

        plan = rng.choices(self.eligible, self.eligible_weights)[0]
        status = rng.choices(["active", "trialing", "past_due", "cancelled"], [90, 4, 3, 3])[0]
        if plan.id == "free" and status in ("trialing", "past_due"):
            status = "active"
        if status == "cancelled":
            plan = self.plans["free"]
        monthly = self._monthly_messages(rng, plan)
        paid = plan.id != "free"
        period_start = dt.datetime.combine(self.end.replace(day=1), dt.time(), tzinfo=dt.UTC)
        total = UNLIMITED if UNLIMITED in (plan.personal, plan.work) else plan.personal + plan.work
        subscription_line = "\t".join(
            [
                _uuid(rng), user_id, plan.id, status, str(plan.personal), str(plan.work),
                str(total),
                _timestamp(period_start) if paid else "\\N",
                _timestamp(period_start + dt.timedelta(days=31)) if paid else "\\N",
                _timestamp(first_seen), _timestamp(last_seen),
                _timestamp(end_at - dt.timedelta(days=3)) if status == "cancelled" else "\\N",
                _timestamp(end_at - dt.timedelta(days=2)) if status == "past_due" else "\\N",
            ]
        )  # fmt: skip

        agents: list[_Agent] = []
        app_lines: list[str] = []
        agent_lines: list[str] = []
        types = self._agent_types(rng, plan)
        for index, agent_type in enumerate(types):
            agent, app_line, agent_line = self._agent(
                rng, number, index, agent_type, user_id, first, first_seen, end_at
            )
            agents.append(agent)
            app_lines.append(app_line)
            agent_lines.append(agent_line)
        user = _User(number, user_id, plan, monthly, tuple(agents))
        return user, [user_line], [subscription_line], app_lines, agent_lines

    @staticmethod
    def _monthly_messages(rng: random.Random, plan: _Plan) -> int:
        if plan.hard_cap and plan.included is not None:
            return int(plan.included * 0.8 * rng.random() ** 2)
        if plan.id == "enterprise":
            return int(rng.lognormvariate(math.log(250_000), 0.7))
        # Median 25,000 against 50,000 included: about one owner in eight goes over.
        return int(rng.lognormvariate(math.log(25_000), 0.6))

    def _agent_types(self, rng: random.Random, plan: _Plan) -> list[str]:
        count = self.options.agents_per_user
        if UNLIMITED in (plan.personal, plan.work) or count > plan.personal + plan.work:
            personal = sum(rng.random() < 0.5 for _ in range(count))
        else:
            personal = rng.randint(max(0, count - plan.work), min(count, plan.personal))
        types = ["personal"] * personal + ["work"] * (count - personal)
        rng.shuffle(types)
        return types

    def _agent(
        self,
        rng: random.Random,
        user: int,
        index: int,
        agent_type: str,
        owner_id: str,
        first_name: str,
        first_seen: dt.datetime,
        end_at: dt.datetime,
    ) -> tuple[_Agent, str, str]:
        agent_id, app_id = _uuid(rng), _uuid(rng)
        handle = demo_handle(
            rng.choice(ADJECTIVES) + rng.choice(NOUNS), self.options.seed, user, index
        )
        role = rng.choice(ROLES)
        status = rng.choices(["active", "paused", "archived"], [90, 6, 4])[0]
        created = first_seen + dt.timedelta(minutes=rng.randint(5, 60 * 24 * 30))
        # Stopped agents stopped at the end of the window, so their history is complete.
        updated = end_at if status != "active" else created
        key_prefix = APP_KEY_PREFIX + "".join(
            rng.choices(string.ascii_letters + string.digits, k=VISIBLE_PREFIX_LENGTH - 6)
        )
        # Nobody knows a key whose hash is random bytes: demo apps cannot authenticate
        # until their owner rotates the key.
        key_hash = secrets.token_hex(32)
        app_line = "\t".join(
            [app_id, agent_id, "active", key_prefix, key_hash, _timestamp(created),
             _timestamp(created), _timestamp(created)]
        )  # fmt: skip

        email = phone = whatsapp = email_hash = None
        if self.can_encrypt and rng.randrange(self.options.encrypt_every) == 0:
            email_plain = f"{handle}@agents.{self.domain}"
            number = f"+1555{rng.randint(0, 9_999_999):07d}"
            email, phone, whatsapp = encrypt(email_plain), encrypt(number), encrypt(number)
            email_hash = lookup_hash(email_plain)
            self.encrypted += 1
        description = (
            f"{first_name}'s {role.lower()}, answering on the web and WhatsApp."
            if rng.random() < 0.7
            else None
        )
        website = f"https://{handle.replace('_', '-')}.example.com" if rng.random() < 0.4 else None
        onboarding = (
            json.dumps({"goal": role.lower(), "tone": rng.choice(["friendly", "formal", "brief"])})
            if rng.random() < 0.8
            else None
        )
        agent_line = "\t".join(
            [
                agent_id, owner_id, f"{first_name}'s {role}", handle, _text(description),
                _text(email), _text(phone), _text(whatsapp), _text(email_hash), _text(website),
                _text(onboarding), status, agent_type, _timestamp(created), _timestamp(updated),
                app_id,
            ]
        )  # fmt: skip
        agent = _Agent(
            number=index, id=agent_id, app_id=app_id, handle=handle, agent_type=agent_type,
            status=status, weight=rng.random() + 0.05,
        )  # fmt: skip
        return agent, app_line, agent_line

    # --- usage -------------------------------------------------------------------------------

    def usage_lines(self, user: _User, monthly: dict[tuple[str, str], int]) -> Iterator[str]:
        """COPY lines of agent_usage for the owner's agents; add messages to `monthly`."""
        rng = self._rng(user.number, "usage")
        plan = user.plan
        cap = plan.included if plan.hard_cap else None
        per_message, per_call, per_second = plan.price_micro
        weights = sum(agent.weight for agent in user.agents)
        month_used: dict[str, int] = {}
        # rng.random() rather than randint(): this loop makes every usage row.
        uniform = rng.random
        for agent in user.agents:
            daily = user.monthly_messages * agent.weight / weights / 30
            storage = rng.randint(100_000, 500_000_000)
            for _, day_text, measured_at, month in self.days:
                messages = int(daily * (0.5 + uniform()))
                if cap is not None:
                    messages = max(0, min(messages, cap - month_used.get(month, 0)))
                    month_used[month] = month_used.get(month, 0) + messages
                calls = messages * 2 + int(uniform() * 6)
                seconds = int(messages * (0.5 + uniform()))
                storage += int(uniform() * 2_000_000)
                cost = messages * per_message + calls * per_call + seconds * per_second
                key = (user.id, month)
                monthly[key] = monthly.get(key, 0) + messages
                yield (
                    f"{_uuid(rng)}\t{agent.id}\t{day_text}\t{messages}\t{calls}\t{storage}\t"
                    f"{measured_at}\t{seconds}\t{cost // 1_000_000}.{cost % 1_000_000:06d}\t"
                    f"{measured_at}\n"
                )

    # --- conversations and messages ----------------------------------------------------------

    def message_lines(self, user: _User, conversations: list[str]) -> Iterator[str]:
        """COPY lines of messages; the conversations they belong to go into `conversations`."""
        options = self.options
        if not options.conversation_days:
            return
        rng = self._rng(user.number, "messages")
        last_days = self.days[-options.conversation_days :]
        per_day = options.messages_per_day
        for agent in user.agents:
            for day_number, (day, _, _, _) in enumerate(last_days):
                day_start = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
                remaining = per_day
                thread = 0
                while remaining:
                    count = min(remaining, MESSAGES_PER_CONVERSATION)
                    remaining -= count
                    thread += 1
                    conversation_id = _uuid(rng)
                    channel = rng.choices(CHANNELS, CHANNEL_WEIGHTS)[0]
                    at = day_start + dt.timedelta(seconds=rng.randint(0, 20 * 3600))
                    started = at
                    topic = rng.randrange(len(USER_LINES))
                    for position in range(count):
                        role = "user" if position % 2 == 0 else "agent"
                        line = (USER_LINES if role == "user" else AGENT_LINES)[
                            (topic + position // 2) % len(USER_LINES)
                        ]
                        last = at
                        yield (
                            f"{_uuid(rng)}\t{agent.id}\t{conversation_id}\t{role}\t{line}\t"
                            f"{_timestamp(at)}\n"
                        )
                        at += dt.timedelta(seconds=2 + int(rng.random() * 178))
                    archived = day_number < len(last_days) - 1 and rng.random() < 0.5
                    thread_id = (
                        "\\N"
                        if channel == "web"
                        else f"{channel}-{day:%Y%m%d}-{thread}-{agent.number}"
                    )
                    row = (
                        conversation_id, agent.id, f"ext_{rng.getrandbits(40):010x}", channel,
                        thread_id, "archived" if archived else "active", _timestamp(started),
                        _timestamp(last), _timestamp(last) if archived else "\\N",
                    )  # fmt: skip
                    conversations.append("\t".join(row) + "\n")


# The columns each COPY writes, in the order the generator's lines hold them, named by the
# models' fields: a renamed or dropped column fails here, at import, not in the middle of a
# run. Columns left out take their database defaults (tests/test_demo_data.py checks that
# every one left out has one, or is nullable).
WRITTEN_FIELDS: tuple[tuple[type[Model], tuple[str, ...]], ...] = (
    (StackUser, ("id", "email", "display_name", "first_seen_at", "last_seen_at", "updated_at")),
    (
        UserSubscription,
        (
            "id", "user_id", "plan_id", "status", "max_personal_agents", "max_work_agents",
            "max_total_agents", "current_period_start", "current_period_end", "created_at",
            "updated_at", "cancelled_at", "past_due_since",
        ),
    ),
    (
        App,
        ("id", "agent_id", "status", "key_prefix", "key_hash", "key_created_at", "created_at",
         "updated_at"),
    ),
    (
        A1Agent,
        (
            "id", "owner_id", "name", "handle", "description", "email", "phone_number",
            "whatsapp_number", "email_hash", "base_website", "onboarding_data", "status",
            "agent_type", "created_at", "updated_at", "app_id",
        ),
    ),
    (
        AgentUsage,
        (
            "id", "agent_id", "date", "message_count", "api_calls", "storage_bytes",
            "storage_measured_at", "compute_seconds", "estimated_cost", "created_at",
        ),
    ),
    (UserMonthlyUsage, ("user_id", "month", "message_count", "updated_at")),
    (Message, ("id", "agent_id", "conversation_id", "role", "content", "created_at")),
    (
        AgentConversation,
        (
            "id", "agent_id", "external_user_id", "channel", "thread_id", "status", "started_at",
            "last_message_at", "ended_at",
        ),
    ),
)  # fmt: skip


def _column(model: type[Model], name: str) -> str:
    field = model._meta.get_field(name)
    if not isinstance(field, models.Field) or not field.column:
        raise TypeError(f"{model.__name__}.{name} is not a column")
    return field.column


COLUMNS = {
    model._meta.db_table: ", ".join(_column(model, name) for name in names)
    for model, names in WRITTEN_FIELDS
}


def _copy(cursor: Any, table: str, lines: Iterable[str]) -> int:
    """Stream lines (with or without their newline) into the table with COPY; count them."""
    count = 0
    buffer: list[str] = []
    with cursor.copy(f"COPY {table} ({COLUMNS[table]}) FROM STDIN") as copy:
        for line in lines:
            buffer.append(line if line.endswith("\n") else line + "\n")
            count += 1
            if len(buffer) >= _COPY_BUFFER_LINES:
                copy.write("".join(buffer))
                buffer.clear()
        if buffer:
            copy.write("".join(buffer))
    return count


def _write_chunk(generator: _Generator, numbers: range, result: DemoResult) -> None:
    """Write whole owners in one transaction; the deferred foreign keys are checked at commit."""
    profiles = [generator.user(number) for number in numbers]
    users = [profile[0] for profile in profiles]
    with transaction.atomic(), connection.connection.cursor() as cursor:
        counts = {
            "stack_users": _copy(cursor, "stack_users", (p[1][0] for p in profiles)),
            "user_subscriptions": _copy(cursor, "user_subscriptions", (p[2][0] for p in profiles)),
            "apps": _copy(cursor, "apps", (line for p in profiles for line in p[3])),
            "a1_agents": _copy(cursor, "a1_agents", (line for p in profiles for line in p[4])),
        }
        monthly: dict[tuple[str, str], int] = {}
        counts["agent_usage"] = _copy(
            cursor,
            "agent_usage",
            (line for u in users for line in generator.usage_lines(u, monthly)),
        )
        now = _timestamp(dt.datetime.now(dt.UTC))
        counts["user_monthly_usage"] = _copy(
            cursor,
            "user_monthly_usage",
            (
                f"{user_id}\t{month}\t{messages}\t{now}"
                for (user_id, month), messages in monthly.items()
                if messages
            ),
        )
        conversations: list[str] = []
        counts["messages"] = _copy(
            cursor,
            "messages",
            (line for u in users for line in generator.message_lines(u, conversations)),
        )
        counts["agent_conversations"] = _copy(cursor, "agent_conversations", conversations)
    result.users += len(numbers)
    for table, count in counts.items():
        result.rows[table] = result.rows.get(table, 0) + count


def demo_generate(
    options: DemoOptions,
    *,
    append: bool = False,
    progress: Callable[[int], Any] | None = None,
) -> DemoResult:
    """Write the demo data described in the module docstring; return what was written.

    `progress` is called with the number of agents written after each committed chunk.
    Raise DemoDataExists when this seed's owners exist and `append` is false, and
    DemoRunInProgress when another run is writing.
    """
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [ADVISORY_LOCK_KEY])
        if not cursor.fetchone()[0]:
            raise DemoRunInProgress("Another generate_demo_data run is writing; try again later.")
    try:
        existing = demo_existing_users(options.seed)
        if existing and not append:
            raise DemoDataExists(options.seed, existing)
        first = existing if append else 0
        if first + options.users - 1 > MAX_USER_NUMBER:
            raise ValueError(f"At most {MAX_USER_NUMBER + 1} demo users per seed.")
        generator = _Generator(options, _plans(), bool(settings.FIELD_ENCRYPTION_KEYS))
        result = DemoResult(seed=options.seed, first_user=first)
        per_chunk = max(1, options.chunk_agents // options.agents_per_user)
        for start in range(first, first + options.users, per_chunk):
            numbers = range(start, min(start + per_chunk, first + options.users))
            _write_chunk(generator, numbers, result)
            if progress is not None:
                progress(len(numbers) * options.agents_per_user)
        result.encrypted_agents = generator.encrypted
        with connection.cursor() as cursor:
            # Fresh statistics, so that the planner knows the new sizes at once.
            cursor.execute(f"ANALYZE {', '.join(COLUMNS)}")
        result.seconds = time.perf_counter() - started
        return result
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [ADVISORY_LOCK_KEY])
