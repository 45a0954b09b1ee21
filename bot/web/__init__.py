"""The review dashboard and compliance workspace (FastAPI + server-rendered Jinja2)."""
