"""Who is on the hub: a small CSV the instructor writes (``user,role,password``), read and checked here."""

from __future__ import annotations

import csv
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

# Portable Unix account names (useradd's own rule, lower case), also fine as nbgrader student ids
# (no '+', which nbgrader's exchange uses as its separator).
ACCOUNT_NAME = re.compile(r"[a-z_][a-z0-9_-]{0,31}")
ROLES = ("instructor", "student")


@dataclass(frozen=True)
class Member:
    name: str
    role: str
    password: str
    password_made_up: bool = False


def read_roster(path: Path) -> list[Member]:
    """The roster's members; exactly one instructor (who grades). A line without a password gets a random one."""
    members = []
    with open(path, newline="", encoding="utf-8") as fh:
        for number, row in enumerate(csv.DictReader(fh), start=2):
            name, role = (row.get("user") or "").strip(), (row.get("role") or "").strip().lower()
            password = (row.get("password") or "").strip()
            if not ACCOUNT_NAME.fullmatch(name):
                raise ValueError(f"{path}:{number}: {name!r} is not a valid account name ({ACCOUNT_NAME.pattern})")
            if role not in ROLES:
                raise ValueError(f"{path}:{number}: role {role!r} is neither instructor nor student")
            members.append(Member(name, role, password or secrets.token_urlsafe(12), not password))
    names = [m.name for m in members]
    if len(set(names)) != len(names):
        raise ValueError(f"{path}: a user is listed twice")
    if [m.role for m in members].count("instructor") != 1:
        raise ValueError(f"{path}: name exactly one instructor (the account that grades)")
    return members
