"""Reads about agents: scoped querysets for the API and admin, counts for the limits."""

from dataclasses import dataclass, replace
from typing import Any

from django.db import connection
from django.db.models import Count, IntegerField, OuterRef, Q, QuerySet, Subquery
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce, Lower
from django.db.models.lookups import Exact

from agents.models import A1Agent, AgentAccess, AgentMember, AgentStatus
from core.principals import AppPrincipal, app_of, owner_of
from core.sql_rows import SqlRows, model_columns
from core.staff_permissions import staff_may
from teams.roles import Role
from teams.selectors import (
    ADMIN_TEAM_IDS_SQL,
    MEMBER_TEAM_IDS_SQL,
    member_role,
    team_members,
)

# The agents that count against an owner's plan limits.
COUNTED = ~Q(status=AgentStatus.ARCHIVED)


def handle_is(handle: str) -> Exact:
    """A condition on agents: the handle is this one without regard to case, through the
    `lower(handle)` unique index.

    (`handle__iexact` would compare UPPER() values, which that index cannot serve.)
    """
    return Exact(Lower("handle"), handle.lower())


def with_handle(agents: QuerySet[A1Agent], handle: str) -> QuerySet[A1Agent]:
    return agents.filter(handle_is(handle))


def reachable_by_owner(user_id: str, *, via: str = "") -> Q:
    """The agents a signed-in user may see: their own (`owner_id` the user, no team); those of
    every team they are a member of now, unless restricted; a team's restricted ones if they
    are listed on it or an admin of the team (docs/teams.md). `via` puts the condition on
    rows under agents (`agent__`).

    The same rule as `agent_role_of`, as a filter for lists; `REACHABLE_BY_OWNER_SQL` is
    its plain-SQL form.
    """

    def field(name: str) -> str:
        return f"{via}{name}"

    # One IN over the accounts the user reaches (themselves and their teams: a team's agent
    # is owned by the team, `owner_id = team_id`), so the owner index finds the rows; an OR
    # of the owner and the teams made PostgreSQL scan every agent (29 ms at 100,000 agents).
    # The subqueries are SQL (the same as REACHABLE_BY_OWNER_SQL's): built with the ORM,
    # their Exists and joins cost about 2 ms of compiling on every list request.
    accounts = RawSQL(  # noqa: S611 (constants; the user id is a parameter)
        f"SELECT %s::text UNION ALL {_MEMBER_TEAM_IDS_POSITIONAL}", [user_id, user_id]
    )
    listed = RawSQL("SELECT am.agent_id FROM agent_members am WHERE am.user_id = %s", [user_id])
    admin_teams = RawSQL(_ADMIN_TEAM_IDS_POSITIONAL, [user_id])  # noqa: S611
    # The IN finds the rows; the branches decide: a personal agent is the user's own (not
    # merely owned by an account they reach: an agent owned by a team's id without the team
    # would otherwise reach every member), a team's agent follows the team's access rule.
    personal = Q(**{field("team_id__isnull"): True, field("owner_id"): user_id})
    of_a_team = Q(**{field("team_id__isnull"): False}) & (
        Q(**{field("access"): AgentAccess.TEAM})
        | Q(**{field("id__in"): listed})
        | Q(**{field("team_id__in"): admin_teams})
    )
    return Q(**{field("owner_id__in"): accounts}) & (personal | of_a_team)


_MEMBER_TEAM_IDS_POSITIONAL = MEMBER_TEAM_IDS_SQL.replace("%(user)s", "%s")
_ADMIN_TEAM_IDS_POSITIONAL = ADMIN_TEAM_IDS_SQL.replace("%(user)s", "%s")
if ADMIN_TEAM_IDS_SQL.count("%(user)s") != 1:  # pragma: no cover - a change to that SQL
    raise RuntimeError("ADMIN_TEAM_IDS_SQL must name the user once (one positional parameter).")

# reachable_by_owner on the agent aliased `a`, with the user's id as `%(user)s`.
REACHABLE_BY_OWNER_SQL = f"""(
    a.owner_id IN (SELECT %(user)s::text UNION ALL {MEMBER_TEAM_IDS_SQL})
    AND ((a.team_id IS NULL AND a.owner_id = %(user)s)
         OR (a.team_id IS NOT NULL
             AND (a.access = 'team'
                  OR a.id IN (SELECT am.agent_id FROM agent_members am WHERE am.user_id = %(user)s)
                  OR a.team_id IN ({ADMIN_TEAM_IDS_SQL}))))
)"""  # noqa: S608 - constants


# The `team` filter of the lists: a team's id, or this for the caller's own agents only.
OWN_AGENTS_ONLY = "none"


def of_team(agents: Any, team: str | None) -> Any:
    """Narrow agents (a queryset or the list's SqlRows) to one team's, or with
    OWN_AGENTS_ONLY to those no team owns; None or empty leaves them as they are."""
    if team == OWN_AGENTS_ONLY:
        return agents.filter(team_id__isnull=True)
    if team:
        return agents.filter(team_id=team)
    return agents


def agent_queryset_for(user: Any) -> QuerySet[A1Agent]:
    """Agents the caller may see: an owner's own and their teams', or all of them for staff;
    none otherwise."""
    agents = A1Agent.objects.select_related("app").order_by("-created_at", "-id")
    if staff_may(user, "agent", "view"):
        return agents
    owner = owner_of(user)
    if owner is None:
        return agents.none()
    return agents.filter(reachable_by_owner(owner.id))


def agent_role_of(user_id: str, agent: A1Agent) -> Role | None:
    """A signed-in user's role on the agent: owner of their own; for a team's, while they
    are a member of the team, their team role, and on a restricted agent the lower of it
    and the role they are listed with (None if not listed), unless they are a team admin."""
    if agent.team_id is None:
        return Role.OWNER if agent.owner_id == user_id else None
    role = member_role(team_id=agent.team_id, user_id=user_id)
    if role is None or role >= Role.ADMIN or agent.access != AgentAccess.RESTRICTED:
        return role
    listed = AgentMember.objects.filter(agent_id=agent.pk, user_id=user_id).values_list(
        "role", flat=True
    )
    granted = listed.first()
    return None if granted is None else min(role, Role[granted.upper()])


@dataclass(frozen=True)
class KeyHolder:
    """The app a key belongs to, as its authentication needs it."""

    principal: AppPrincipal
    app_status: str


# Through the unique index on key_hash; the join drops an app without an agent. Plain SQL:
# this runs on every app request, and the ORM's compile of the same query costs 0.4 ms.
KEY_HOLDER_SQL = """
SELECT app.id, app.status, agent.id, agent.owner_id
FROM apps app JOIN a1_agents agent ON agent.id = app.agent_id
WHERE app.key_hash = %s
"""


def key_holder(key_hash: str) -> KeyHolder | None:
    """The app (and its agent) whose current key has this hash, or None."""
    with connection.cursor() as cursor:
        cursor.execute(KEY_HOLDER_SQL, [key_hash])
        row = cursor.fetchone()
    if row is None:
        return None
    app_id, status, agent_id, owner_id = row
    return KeyHolder(AppPrincipal(app_id=app_id, agent_id=agent_id, owner_id=owner_id), status)


def agent_role_for(user: Any, agent_id: Any) -> Role | None:
    """The caller's role on the agent, or None when they may not see it: the one decision
    of who may reach an agent (docs/teams.md).

    An app has every role on its own agent, a staff member who may view agents on every
    agent (what staff may then do is their role's permissions, checked by the views), a
    signed-in user `agent_role_of`. Every route that names an agent answers 404 on None:
    another owner's or another team's agent is as unknown as one that does not exist.
    """
    app = app_of(user)
    if app is not None:
        return Role.OWNER if agent_id == app.agent_id else None
    agents = A1Agent.objects.filter(pk=agent_id)
    if staff_may(user, "agent", "view"):
        return Role.OWNER if agents.exists() else None
    owner = owner_of(user)
    if owner is None:
        return None
    agent = agents.only("id", "owner_id", "team_id", "access").first()
    return None if agent is None else agent_role_of(owner.id, agent)


def agent_is_visible_to(user: Any, agent_id: Any) -> bool:
    """Whether the caller may see the agent (`agent_role_for` gives them a role on it)."""
    return agent_role_for(user, agent_id) is not None


def agent_public_by_handle(handle: str) -> A1Agent | None:
    """The active agent with this handle, matched without regard to case."""
    return (
        with_handle(A1Agent.objects.filter(status=AgentStatus.ACTIVE), handle)
        .only(
            "id", "name", "handle", "description", "avatar_url", "agent_type",
            "base_website", "custom_website", "created_at",
        )
        .first()
    )  # fmt: skip


def handle_is_taken(handle: str, *, excluding_agent_id: Any = None) -> bool:
    agents = with_handle(A1Agent.objects.all(), handle)
    if excluding_agent_id is not None:
        agents = agents.exclude(pk=excluding_agent_id)
    return agents.exists()


def agent_owner_subquery(agent_id: Any) -> Subquery:
    """The agent's owner as a subquery, for a filter that should not read it first."""
    return Subquery(A1Agent.objects.filter(pk=agent_id).values("owner_id")[:1])


def agent_owner_id(agent_id: Any) -> str | None:
    """The agent's owner, or None if there is no such agent."""
    owner_id = A1Agent.objects.filter(pk=agent_id).values_list("owner_id", flat=True).first()
    return str(owner_id) if owner_id is not None else None


def agent_counts_for_owner(owner_id: str, *, excluding_agent_id: Any = None) -> dict[str, int]:
    """Non-archived agents of an owner per type, plus `total`, in one query."""
    agents = A1Agent.objects.filter(owner_id=owner_id).filter(COUNTED)
    if excluding_agent_id is not None:
        agents = agents.exclude(pk=excluding_agent_id)
    counts = agents.aggregate(
        personal=Count("id", filter=Q(agent_type="personal")),
        work=Count("id", filter=Q(agent_type="work")),
        total=Count("id"),
    )
    return {key: int(value or 0) for key, value in counts.items()}


def agents_of_owner(owner_id: str) -> QuerySet[A1Agent]:
    """All of an owner's agents, archived ones too, newest first."""
    return A1Agent.objects.filter(owner_id=owner_id).order_by("-created_at")


def agent_count_column(owner_id_field: str) -> Coalesce:
    """The non-archived agents of the owner named by the outer row's `owner_id_field`."""
    counts = (
        A1Agent.objects.filter(owner_id=OuterRef(owner_id_field))
        .filter(COUNTED)
        .order_by()
        .values("owner_id")
        .annotate(count=Count("id"))
        .values("count")
    )
    return Coalesce(Subquery(counts, output_field=IntegerField()), 0)


def agent_access_members(agent_id: Any) -> list[dict[str, str]]:
    """The members a restricted agent is listed for, with their role, by user id."""
    rows = AgentMember.objects.filter(agent_id=agent_id).order_by("user_id")
    return [
        {"user_id": user_id, "role": role} for user_id, role in rows.values_list("user_id", "role")
    ]


# The console's "who can reach this agent" lists at most this many of a team's members.
REACH_LIMIT = 500


@dataclass(frozen=True)
class AgentReach:
    """Who can reach an agent: `people` (user id, role, why), and whether the team has more
    members than the `limit` shown."""

    people: list[dict[str, Any]]
    truncated: bool = False
    limit: int = REACH_LIMIT


def agent_reach(agent: A1Agent) -> AgentReach:
    """Who can reach the agent and why, by `agent_role_of`'s rule: the owner of a user's
    agent; for a team's, each current member (the first REACH_LIMIT by id) with their role
    on it, or none and why not."""
    if agent.team_id is None:
        owner = {"user_id": agent.owner_id, "role": Role.OWNER, "why": "owns the agent"}
        return AgentReach([owner])
    restricted = agent.access == AgentAccess.RESTRICTED
    listed = dict(AgentMember.objects.filter(agent_id=agent.pk).values_list("user_id", "role"))
    members = team_members(agent.team_id, limit=REACH_LIMIT + 1)
    reach = []
    for member in members[:REACH_LIMIT]:
        team_role: Role = member["role"]
        held = ", ".join(member["permissions"]) or "no permissions: the default"
        why = f"team role {team_role.name.lower()} ({held})"
        role: Role | None = team_role
        if restricted and team_role < Role.ADMIN:
            granted = listed.get(member["user_id"])
            if granted is None:
                role, why = None, f"not listed on this restricted agent; {why}"
            else:
                role = min(team_role, Role[granted.upper()])
                why = f"listed as {granted}; {why}"
        elif restricted:
            why = f"a team admin reaches every agent of the team; {why}"
        reach.append({"user_id": member["user_id"], "role": role, "why": why})
    return AgentReach(reach, truncated=len(members) > REACH_LIMIT)


# The agents list's columns, named as `.values()` would name them (`app__id`), read by
# one SELECT (core.sql_rows): `agents.api.serializers.agent_list_item` writes each row.
AGENT_LIST_ROWS = model_columns(
    A1Agent, "a",
    "id", "owner_id", "team_id", "name", "handle", "description", "avatar_url", "email",
    "phone_number", "whatsapp_number", "base_website", "custom_website", "onboarding_data",
    "settings", "status", "agent_type", "created_at", "updated_at", "app__id", "app__status",
    "app__key_prefix", "app__key_created_at",
)  # fmt: skip
AGENT_LIST_SOURCE = "a1_agents a JOIN apps app ON app.id = a.app_id"


def agent_rows_for(user: Any) -> SqlRows:
    """agent_queryset_for(user) as the list reads it: AGENT_LIST_ROWS of the agents the
    caller may see (REACHABLE_BY_OWNER_SQL; all for staff; none otherwise)."""
    rows = SqlRows(AGENT_LIST_ROWS, AGENT_LIST_SOURCE, model=A1Agent)
    if staff_may(user, "agent", "view"):
        return rows
    owner = owner_of(user)
    if owner is None:
        return replace(rows, where="FALSE")
    return replace(rows, where=REACHABLE_BY_OWNER_SQL, parameters={"user": owner.id})
