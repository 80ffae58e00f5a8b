"""The agents registry: identities, statuses and hashed per-agent tokens (and their keys).

Rows live in SQLite (`agents`, `agent_tokens`); every change runs through
`AuditStore.transact`, so the table change and its audit record commit together or not at
all. An in-memory index (token hash → principal, id → agent) is loaded at start-up and
replaced after each commit, so authenticating an agent token is one dict lookup and a
suspend, revoke, rotation or deletion holds from the very next request.
"""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, TypeVar
from uuid import uuid4

from rampartd import proof
from rampartd.agent_fields import (
    UNSET,
    check_description,
    check_id,
    check_name,
    check_status,
    check_transition,
)
from rampartd.audit.store import AuditStore, RecordDraft
from rampartd.errors import Conflict, NotFound
from rampartd.home import new_token
from rampartd.models import Principal

TOKEN_PREFIX = "rpd_agent_"  # noqa: S105 - a recognisable prefix, not a secret
LIST_MAX = 200
NOT_FOUND_CODE = "AGENT_NOT_FOUND"
_SELECT = "SELECT id, name, description, status, created_at, updated_at FROM agents"
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Agent:
    """One registered agent."""

    id: str
    name: str
    description: str | None
    status: str
    created_at: str
    updated_at: str

    def to_json(self) -> dict[str, Any]:
        """The agent object on the wire (camelCase)."""
        return {"id": self.id, "name": self.name, "description": self.description,
                "status": self.status, "createdAt": self.created_at,
                "updatedAt": self.updated_at}


def now_iso() -> str:
    """The current UTC time as ISO 8601 with milliseconds."""
    moment = datetime.now(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def credential_id(agent_id: str) -> str:
    """The secret-free key of an agent's token for limits and open streams."""
    return f"agent:{agent_id}"


def token_digest(token: str) -> str:
    """The SHA-256 hex digest under which a token is stored and looked up."""
    return hashlib.sha256(token.encode()).hexdigest()


def _row(agent: Agent) -> tuple[str, str, str | None, str, str, str]:
    return (agent.id, agent.name, agent.description, agent.status, agent.created_at,
            agent.updated_at)


class IssuedToken:
    """A new agent token with the digest it is found by and the key it signs with."""

    __slots__ = ("digest", "key", "token")

    def __init__(self) -> None:
        self.token = TOKEN_PREFIX + new_token()
        self.digest = token_digest(self.token)
        self.key = proof.proof_key(self.token)

    def insert(self, conn: sqlite3.Connection, agent_id: str, created_at: str) -> None:
        """Store the digest and key (never the token)."""
        conn.execute("INSERT INTO agent_tokens (token_sha256, agent_id, created_at, proof_key) "
                     "VALUES (?, ?, ?, ?)", (self.digest, agent_id, created_at, self.key.hex()))


def _insert_agent(conn: sqlite3.Connection, agent: Agent, issued: IssuedToken) -> None:
    try:
        conn.execute("INSERT INTO agents (id, name, description, status, created_at, "
                     "updated_at) VALUES (?, ?, ?, ?, ?, ?)", _row(agent))
    except sqlite3.IntegrityError:
        raise _name_taken(agent.name) from None
    issued.insert(conn, agent.id, agent.created_at)


def _name_taken(name: str) -> Conflict:
    return Conflict(f"an agent named {name!r} already exists")


def _load_row(conn: sqlite3.Connection, agent_id: str) -> Agent:
    row = conn.execute(_SELECT + " WHERE id = ?", (agent_id,)).fetchone()
    if row is None:
        raise NotFound(f"no agent with id {agent_id}", code=NOT_FOUND_CODE)
    return Agent(*row)


def _change(old: Any, new: Any) -> dict[str, Any]:
    return {"from": old, "to": new}


class AgentRegistry:
    """The agents table, its tokens, and the live index used to authenticate agent tokens."""

    def __init__(self, store: AuditStore) -> None:
        self.store = store
        self._agents: dict[str, Agent] = {}
        self._by_name: dict[str, str] = {}
        self._principals: dict[str, Principal] = {}  # token sha256 → principal
        self._tokens_of: dict[str, set[str]] = {}  # agent id → token sha256s
        self._keys: dict[str, bytes] = {}  # token sha256 → signing key K (tokens that have one)

    @classmethod
    async def open(cls, store: AuditStore) -> AgentRegistry:
        """Load the registry from the (migrated) database behind store."""
        registry = cls(store)
        async with store.reader() as conn:
            async with conn.execute(_SELECT) as cur:
                for row in await cur.fetchall():
                    registry._put(Agent(*row))
            async with conn.execute("SELECT token_sha256, agent_id, proof_key "
                                    "FROM agent_tokens") as cur:
                for digest, agent_id, key in await cur.fetchall():
                    registry._add_token(agent_id, digest,
                                        None if key is None else bytes.fromhex(key))
        return registry

    # -- the index ---------------------------------------------------------------------------

    def _put(self, agent: Agent) -> None:
        old = self._agents.get(agent.id)
        if old is not None and self._by_name.get(old.name) == agent.id:
            del self._by_name[old.name]
        self._agents[agent.id] = agent
        self._by_name[agent.name] = agent.id
        principal = self._principal(agent)
        for digest in self._tokens_of.get(agent.id, ()):
            self._principals[digest] = principal

    def _drop(self, agent_id: str) -> None:
        agent = self._agents.pop(agent_id, None)
        if agent is not None and self._by_name.get(agent.name) == agent_id:
            del self._by_name[agent.name]
        self._forget_tokens(agent_id)

    def _forget_tokens(self, agent_id: str) -> None:
        for digest in self._tokens_of.pop(agent_id, set()):
            self._principals.pop(digest, None)
            self._keys.pop(digest, None)

    def _add_token(self, agent_id: str, digest: str, key: bytes | None) -> None:
        agent = self._agents.get(agent_id)
        if agent is None:
            return
        self._tokens_of.setdefault(agent_id, set()).add(digest)
        self._principals[digest] = self._principal(agent)
        if key is not None:
            self._keys[digest] = key

    def _replace_tokens(self, agent_id: str, issued: IssuedToken) -> None:
        self._forget_tokens(agent_id)
        self._add_token(agent_id, issued.digest, issued.key)

    @staticmethod
    def _principal(agent: Agent) -> Principal:
        return Principal(scope="eval", credential_id=credential_id(agent.id), agent_id=agent.id,
                         agent_name=agent.name, agent_status=agent.status)

    def principal_for(self, token_sha256: str) -> Principal | None:
        """The eval principal (with the agent's current status) for a token hash, or None."""
        return self._principals.get(token_sha256)

    def signing_key_for(self, token_sha256: str) -> bytes | None:
        """The signing key K of a token, or None (unknown, or issued before tokens had one)."""
        return self._keys.get(token_sha256)

    # -- reads -------------------------------------------------------------------------------

    def get(self, agent_id: str) -> Agent:
        """One agent by id; BadRequest for a malformed id, NotFound (AGENT_NOT_FOUND) if absent."""
        norm = check_id(agent_id)
        agent = self._agents.get(norm)
        if agent is None:
            raise NotFound(f"no agent with id {norm}", code=NOT_FOUND_CODE)
        return agent

    def by_id(self, agent_id: str) -> Agent | None:
        """The agent with this (canonical) id, if registered."""
        return self._agents.get(agent_id)

    def by_name(self, name: str) -> Agent | None:
        """The agent currently registered under name, if any."""
        agent_id = self._by_name.get(name)
        return None if agent_id is None else self._agents.get(agent_id)

    def list_agents(self, *, limit: int = 100, offset: int = 0,
             name: str | None = None) -> tuple[list[Agent], int]:
        """A page of agents, oldest first, and the total count."""
        if name is not None:
            found = self.by_name(name)
            agents = [] if found is None else [found]
        else:
            agents = sorted(self._agents.values(), key=lambda a: (a.created_at, a.name))
        return agents[offset:offset + limit], len(agents)

    # -- changes -----------------------------------------------------------------------------

    async def _commit(self, txn: Callable[[sqlite3.Connection], T],
                      drafts: Callable[[T], RecordDraft | list[RecordDraft]] | list[RecordDraft],
                      apply: Callable[[T], None]) -> T:
        """Commit a change with its record, then apply it to the index.

        Shielded: a caller that goes away after the commit must not leave the index behind
        the database (a suspended agent's token would keep working).
        """
        async def run() -> T:
            value, _ = await self.store.transact(txn, drafts)
            apply(value)
            return value

        return await asyncio.shield(asyncio.ensure_future(run()))

    async def create(self, name: str, description: str | None = None) -> tuple[Agent, str]:
        """Register an agent; returns it and its token (the only time the token exists)."""
        name = check_name(name)
        description = check_description(description)
        stamp = now_iso()
        agent = Agent(str(uuid4()), name, description, "active", stamp, stamp)
        issued = IssuedToken()
        draft = RecordDraft(kind="agent.created", agent=name, detail={
            "agent_id": agent.id, "name": name, "description": description,
            "status": agent.status})
        def apply(_: None) -> None:
            self._put(agent)
            self._add_token(agent.id, issued.digest, issued.key)

        await self._commit(lambda conn: _insert_agent(conn, agent, issued), [draft], apply)
        return agent, issued.token

    async def update(self, agent_id: str, *, name: Any = UNSET, description: Any = UNSET,
                     status: Any = UNSET) -> Agent:
        """Change name, description (None clears it) and/or status; records what changed."""
        agent_id = check_id(agent_id)
        fields: dict[str, Any] = {}
        if name is not UNSET:
            fields["name"] = check_name(name)
        if description is not UNSET:
            fields["description"] = check_description(description)
        if status is not UNSET:
            fields["status"] = check_status(status)
        stamp = now_iso()

        def txn(conn: sqlite3.Connection) -> tuple[Agent, dict[str, Any]]:
            current = _load_row(conn, agent_id)
            if "status" in fields:
                check_transition(current.status, fields["status"])
            changes = {key: _change(getattr(current, key), value)
                       for key, value in fields.items() if getattr(current, key) != value}
            if not changes:
                return current, changes
            new = replace(current, updated_at=stamp,
                          **{key: change["to"] for key, change in changes.items()})
            try:
                conn.execute("UPDATE agents SET name = ?, description = ?, status = ?, "
                             "updated_at = ? WHERE id = ?",
                             (new.name, new.description, new.status, new.updated_at, new.id))
            except sqlite3.IntegrityError:
                raise _name_taken(new.name) from None
            return new, changes

        def drafts(result: tuple[Agent, dict[str, Any]]) -> list[RecordDraft]:
            new, changes = result
            if not changes:
                return []
            return [RecordDraft(kind="agent.updated", agent=new.name,
                                detail={"agent_id": new.id, "changes": changes})]

        def apply(result: tuple[Agent, dict[str, Any]]) -> None:
            if result[1]:
                self._put(result[0])

        new, _ = await self._commit(txn, drafts, apply)
        return new

    async def rotate_token(self, agent_id: str) -> tuple[Agent, str]:
        """Issue a new token and invalidate every older one at once; 409 for a revoked agent."""
        agent_id = check_id(agent_id)
        issued = IssuedToken()
        stamp = now_iso()

        def txn(conn: sqlite3.Connection) -> Agent:
            current = _load_row(conn, agent_id)
            if current.status == "revoked":
                raise Conflict("agent is revoked; it cannot get a new token")
            conn.execute("DELETE FROM agent_tokens WHERE agent_id = ?", (agent_id,))
            issued.insert(conn, agent_id, stamp)
            conn.execute("UPDATE agents SET updated_at = ? WHERE id = ?", (stamp, agent_id))
            return replace(current, updated_at=stamp)

        def drafts(agent: Agent) -> RecordDraft:
            return RecordDraft(kind="agent.updated", agent=agent.name, detail={
                "agent_id": agent.id, "changes": {}, "token_rotated": True})

        def apply(agent: Agent) -> None:
            self._put(agent)
            self._replace_tokens(agent.id, issued)

        return await self._commit(txn, drafts, apply), issued.token

    async def delete(self, agent_id: str) -> Agent:
        """Remove an agent and its tokens; the audit chain keeps its records (and this one)."""
        agent_id = check_id(agent_id)

        def txn(conn: sqlite3.Connection) -> tuple[Agent, int]:
            current = _load_row(conn, agent_id)
            tokens = conn.execute("DELETE FROM agent_tokens WHERE agent_id = ?",
                                  (agent_id,)).rowcount
            conn.execute("DELETE FROM agents WHERE id = ?", (agent_id,))
            return current, tokens

        def drafts(result: tuple[Agent, int]) -> RecordDraft:
            agent, tokens = result
            return RecordDraft(kind="agent.deleted", agent=agent.name, detail={
                "agent_id": agent.id, "name": agent.name, "status": agent.status,
                "tokens_removed": tokens})

        agent, _ = await self._commit(txn, drafts, lambda result: self._drop(result[0].id))
        return agent

