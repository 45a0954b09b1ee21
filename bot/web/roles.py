"""Who may do what: one table of permissions per role, checked on every page and route.

Running campaigns (``run_campaigns``: creating one, loading its accounts, starting,
pausing and stopping it, the do-not-call list) belongs to the operations side:
supervisors, who already watch the monitor, and admins. Reviewers and compliance officers
judge calls and scripts; they do not decide whom the bot dials.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    REVIEWER = "reviewer"
    COMPLIANCE = "compliance"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"


class Permission(StrEnum):
    VIEW_CALLS = "view_calls"  # call list, call detail (masked)
    REVEAL_PII = "reveal_pii"  # unmask ID/card/phone numbers, with a reason
    REVIEW = "review"  # claim review items, give verdicts
    VIEW_MONITOR = "view_monitor"  # campaign monitor, big screen
    RUN_CAMPAIGNS = "run_campaigns"  # create, load, start/pause/stop campaigns; do-not-call list
    VIEW_FEEDBACK = "view_feedback"  # agreement statistics, training-data export
    EDIT_TEMPLATES = "edit_templates"  # scripts and rule sets: edit, preview, evaluate
    APPROVE_TEMPLATES = "approve_templates"  # approve another person's draft, publish, roll back
    VIEW_AUDIT = "view_audit"  # read and export the audit log
    MANAGE_USERS = "manage_users"


P = Permission
PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.REVIEWER: frozenset({P.VIEW_CALLS, P.REVIEW}),
    Role.COMPLIANCE: frozenset(
        {P.VIEW_CALLS, P.VIEW_FEEDBACK, P.EDIT_TEMPLATES, P.APPROVE_TEMPLATES}
    ),
    Role.SUPERVISOR: frozenset(
        {
            P.VIEW_CALLS,
            P.REVEAL_PII,
            P.REVIEW,
            P.VIEW_MONITOR,
            P.RUN_CAMPAIGNS,
            P.VIEW_FEEDBACK,
            P.VIEW_AUDIT,
        }
    ),
    Role.ADMIN: frozenset(Permission),
}

#: What only a person signed in with a password may do, never an API token, whatever its
#: role: a verdict, a script's authoring and four-eyes approval, and unmasking someone's
#: numbers are decisions a named person answers for (docs/api.md).
PERSONAL: frozenset[Permission] = frozenset(
    {P.REVIEW, P.EDIT_TEMPLATES, P.APPROVE_TEMPLATES, P.REVEAL_PII}
)


def allowed(role: str, permission: Permission) -> bool:
    try:
        return permission in PERMISSIONS[Role(role)]
    except ValueError:
        return False
