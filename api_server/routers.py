"""Every router the app serves, in one list (add yours here)."""

from fastapi import APIRouter

from api_server.annotations.router import router as annotations
from api_server.auth.router import router as auth
from api_server.drafts.router import router as drafts
from api_server.exports.router import router as exports
from api_server.imports.router import router as imports
from api_server.media.router import router as media
from api_server.members.router import router as members
from api_server.ml.router import router as ml
from api_server.predictions.router import router as predictions
from api_server.projects.router import router as projects
from api_server.storages.router import router as storages
from api_server.system.router import router as system
from api_server.tasks.router import router as tasks
from api_server.users.router import router as users
from api_server.views.router import router as views
from api_server.web.router import router as web
from api_server.webhooks.router import router as webhooks
from api_server.workflow.router import router as workflow

# FastAPI tries routes in this order on every request, so the labeling loop's come first and
# the big, rarely called storage API last. Order never changes which route answers: no two
# routes of different routers match the same path (tests/unit/api/test_routing.py).
ROUTERS: list[APIRouter] = [
    workflow,
    annotations,
    drafts,
    predictions,
    tasks,
    views,
    projects,
    system,
    users,
    auth,
    members,
    imports,
    media,
    exports,
    webhooks,
    ml,
    web,
    storages,
]
