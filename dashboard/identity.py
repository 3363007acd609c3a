"""Who acts: a name on every action, and whether that person may act at all.

The name comes from the login when Streamlit's OIDC login is configured; otherwise the
person types it once per browser session in the sidebar. Roles are optional: a
`roles.yaml` in MONITORS_HOME maps names to `viewer` or `operator`; without that file
everyone operates, and a name the file does not list browses only (a typo in one's own name
must not grant rights the file was written to withhold).

Pages call `actor()` (renders the sidebar box, returns an `Actor`) and disable their action
widgets with `not who.can_act`, showing `who.why_not` next to them.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from urllib.parse import quote

import streamlit as st
import yaml

from dashboard.text import md
from monitors.settings import load_settings

ROLES_FILE = "roles.yaml"
NAME_KEY = "identity.who"
# a link that opens a new tab (a new session) carries the name, so the person does not have
# to type it again; it is only a default for the box, as trusted as typing it
NAME_PARAM = "who"


class Role(StrEnum):
    viewer = "viewer"
    operator = "operator"


@dataclass(frozen=True, slots=True)
class Actor:
    name: str | None
    role: Role
    from_login: bool = False

    @property
    def can_act(self) -> bool:
        return bool(self.name) and self.role is Role.operator

    @property
    def why_not(self) -> str | None:
        """The sentence to show beside disabled actions, or None when they are enabled."""
        if not self.name:
            return "Enter your name in the sidebar to act: every action is signed."
        if self.role is not Role.operator:
            return f"{md(self.name)} is a viewer ({ROLES_FILE}): viewers browse, operators act."
        return None


def load_roles(home: Path) -> dict[str, Role] | None:
    """name -> role from MONITORS_HOME/roles.yaml; None when there is no such file.

    The file is either a mapping (`alice: operator`) or has it under `roles:`. An unknown
    role is an error: a misspelt `operater` silently turning someone into a viewer (or the
    reverse) would be worse than a page that says what is wrong."""
    path = home / ROLES_FILE
    if not path.exists():
        return None
    document = yaml.safe_load(path.read_text()) or {}
    if isinstance(document, dict) and isinstance(document.get("roles"), dict):
        document = document["roles"]
    if not isinstance(document, dict):
        raise ValueError(f"{path}: expected a mapping of name -> viewer|operator")
    roles = {}
    for name, role in document.items():
        if str(role) not in Role.__members__:
            raise ValueError(f"{path}: {name!r} has role {role!r}; one of {', '.join(Role)}")
        roles[str(name).strip()] = Role(str(role))
    return roles


def role_of(name: str | None, roles: dict[str, Role] | None) -> Role:
    if roles is None:
        return Role.operator
    return roles.get((name or "").strip(), Role.viewer)


def _login_name() -> str | None:
    # st.user is empty (and is_logged_in absent) unless an OIDC provider is configured
    user = st.user
    if not user.get("is_logged_in", False):
        return None
    return user.get("email") or user.get("name")


def actor() -> Actor:
    """The person using this browser session, asked for in the sidebar when there is no
    login. Call it once per page run."""
    try:
        roles = load_roles(load_settings().home)
    except (ValueError, yaml.YAMLError) as exc:
        st.sidebar.error(f"Roles file unreadable, acting is off: {md(exc)}")
        return Actor(None, Role.viewer)
    login = _login_name()
    if login:
        who = Actor(login, role_of(login, roles), from_login=True)
        st.sidebar.caption(f"Signed in as **{md(login)}** ({who.role})")
        return who

    # a widget key is dropped when its page is left; the name lives in plain session state
    # so it follows the person across pages
    carried = st.session_state.get(NAME_KEY) or st.query_params.get(NAME_PARAM, "")
    typed = st.sidebar.text_input("Your name", value=carried,
                                  key="identity.input",
                                  placeholder="who acts (kept for this session)",
                                  help="Every acknowledge, mute, resolve and rerun is signed "
                                       "with this name in the audit trail.")
    name = typed.strip() or None
    st.session_state[NAME_KEY] = name or ""
    who = Actor(name, role_of(name, roles))
    if name and who.role is Role.viewer:
        st.sidebar.caption(f"{md(name)}: viewer, browse only")
    return who


def carry_name(who: Actor) -> str:
    """The query-string suffix that carries the acting person's name on a link that opens a
    new tab; empty without a name, or with a login (the new tab has the login too)."""
    if not who.name or who.from_login:
        return ""
    return f"&{NAME_PARAM}={quote(who.name)}"
