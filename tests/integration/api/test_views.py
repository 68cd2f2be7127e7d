"""Data-manager views and filters, through label-studio-sdk 2.1.2, on SQLite and PostgreSQL.

Every filter family is run through `tasks.list(query=...)` and compared with the same filter
written by hand in SQL over the tables; views are created, listed, updated and deleted with the
SDK's `views` client, and a view confines /next and an export.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from label_studio_sdk import LabelStudio
from sqlalchemy import text

from tests.conftest import TEXT_CONFIG
from tests.support.apiserver import ADMIN_TOKEN
from tests.support.labeling import choice, import_tasks, member

N = 40
TAGS = ("red", "green", "blue")


def _item(name: str, operator: str, type_: str, value: Any) -> dict[str, Any]:
    return {"filter": f"filter:tasks:{name}", "operator": operator, "type": type_, "value": value}


def _query(*items: dict[str, Any], conjunction: str = "and", **extra: Any) -> str:
    return json.dumps({"filters": {"conjunction": conjunction, "items": list(items)}, **extra})


@pytest.fixture
def labeled(api, live_server):
    """A project of 40 tasks with annotations, skips, reviews, ground truth and predictions of two versions."""
    project = api.post("/api/projects/", json={"title": "views", "label_config": TEXT_CONFIG}).json()
    pid = project["id"]
    tasks = []
    for i in range(N):
        task: dict[str, Any] = {
            "data": {
                "text": f"item {i}" + (" URGENT" if i % 5 == 0 else ""),
                "n": i,
                "tag": TAGS[i % 3],
                "flag": i % 7 == 0,
            }
        }
        if i % 3:
            label = "Negative" if i % 2 else "Positive"
            task["predictions"] = [
                {"result": choice(label), "score": round(i / N, 3), "model_version": "v1" if i % 2 else "v2"}
            ]
        tasks.append(task)
    ids = import_tasks(api, pid, tasks)
    before = datetime.now(UTC)
    late = api.post("/api/tasks/", json={"project": pid, "data": {"text": "late", "n": -1, "tag": "late"}})
    assert late.status_code == 201, late.text
    with (
        member(api, live_server, pid, "annotator", f"ann{pid}") as ann,
        member(api, live_server, pid, "reviewer", f"rev{pid}") as rev,
    ):
        for i, task_id in enumerate(ids):
            if i % 4 == 1:
                r = ann.post(f"/api/tasks/{task_id}/annotations/", json={"result": choice("Positive")})
                assert r.status_code == 201, r.text
                if i % 8 in (1, 5):
                    r = rev.post(f"/api/annotations/{r.json()['id']}/review/", json={"accepted": i % 8 == 1})
                    assert r.status_code == 201, r.text
            elif i % 4 == 2:
                body = {"result": choice("Neutral"), "ground_truth": i % 8 == 2}
                assert api.post(f"/api/tasks/{task_id}/annotations/", json=body).status_code == 201
            elif i % 4 == 3 and i < 20:
                body = {"result": [], "was_cancelled": True}
                assert ann.post(f"/api/tasks/{task_id}/annotations/", json=body).status_code == 201
        done = _by_hand(live_server, "SELECT id FROM tasks WHERE project_id = :pid AND is_labeled", pid=pid)
        yield {
            "project": pid,
            "ids": ids,
            "labeled": set(done),
            "before": before,
            "annotator": ann.user_id,
            "reviewer": rev.user_id,
        }


def _by_hand(live_server, sql: str, **params: Any) -> list[int]:
    with live_server.session_factory() as session:
        return [row[0] for row in session.execute(text(sql), params)]


def _sdk(live_server) -> LabelStudio:
    return LabelStudio(base_url=live_server.url, api_key=ADMIN_TOKEN)


def _listed(ls: LabelStudio, project: int, query: str) -> list[int]:
    return [t.id for t in ls.tasks.list(project=project, query=query, page_size=7)]


def _cases(live_server, f: dict[str, Any]) -> list[tuple[str, str, str, dict[str, Any]]]:
    """(family, query JSON, hand-written SQL selecting ids, SQL params)."""
    pg = live_server.backend == "postgres"

    def data(key: str) -> str:
        return f"(t.data ->> '{key}')" if pg else f"json_extract(t.data, '$.{key}')"

    def number(key: str) -> str:
        return f"(t.data ->> '{key}')::float" if pg else f"json_extract(t.data, '$.{key}')"

    regex = "~" if pg else "REGEXP"
    before = f["before"] if pg else f["before"].replace(tzinfo=None)
    lo, hi = f["ids"][5], f["ids"][15]
    newest_score = (
        "(SELECT p.score FROM predictions p WHERE p.task_id = t.id ORDER BY p.created_at DESC, p.id DESC LIMIT 1)"
    )
    ann = "EXISTS (SELECT 1 FROM annotations a WHERE a.task_id = t.id AND {})"
    pred = "EXISTS (SELECT 1 FROM predictions p WHERE p.task_id = t.id AND {})"
    result_text = "CAST({}.result AS TEXT)"
    return [
        ("id", _query(_item("id", "in", "Number", {"min": lo, "max": hi})), "t.id BETWEEN :lo AND :hi", {}),
        (
            "data contains",
            _query(_item("data.text", "contains", "String", "urgent")),
            f"lower({data('text')}) LIKE '%urgent%'",
            {},
        ),
        ("data equal", _query(_item("data.tag", "equal", "String", "red")), f"{data('tag')} = 'red'", {}),
        (
            "data regex",
            _query(_item("data.text", "regex", "String", "^item [12][0-9]?$")),
            f"{data('text')} {regex} '^item [12][0-9]?$'",
            {},
        ),
        ("data number", _query(_item("data.n", "greater", "Number", 30)), f"{number('n')} > 30", {}),
        (
            "data boolean",
            _query(_item("data.flag", "equal", "Boolean", True)),
            "(t.data ->> 'flag') = 'true'" if pg else "json_type(t.data, '$.flag') = 'true'",
            {},
        ),
        (
            "data text of a number",
            _query(_item("data.n", "equal", "String", "12")),
            f"{data('n')} = '12'" if pg else "CAST(json_extract(t.data, '$.n') AS TEXT) = '12'",
            {},
        ),
        (
            "data not_equal",
            _query(_item("data.tag", "not_equal", "String", "red")),
            f"{data('tag')} IS NULL OR {data('tag')} <> 'red'",
            {},
        ),
        ("completed", _query(_item("completed_at", "empty", "Datetime", False)), "t.is_labeled", {}),
        (
            "not completed",
            _query(_item("completed_at", "empty", "Datetime", True)),
            # Rejected annotations do not count.
            "NOT " + ann.format("NOT a.was_cancelled AND (a.review_status IS NULL OR a.review_status <> 'rejected')"),
            {},
        ),
        (
            "annotation count",
            _query(_item("total_annotations", "greater", "Number", 0)),
            "(SELECT count(*) FROM annotations a WHERE a.task_id = t.id AND NOT a.was_cancelled) > 0",
            {},
        ),
        (
            "cancellation count",
            _query(_item("cancelled_annotations", "equal", "Number", 1)),
            "(SELECT count(*) FROM annotations a WHERE a.task_id = t.id AND a.was_cancelled) = 1",
            {},
        ),
        (
            "annotators",
            _query(_item("annotators", "contains", "List", f["annotator"])),
            ann.format("a.completed_by_id = :u"),
            {"u": f["annotator"]},
        ),
        (
            "annotators not_contains",
            _query(_item("annotators", "not_contains", "List", f["annotator"])),
            "NOT " + ann.format("a.completed_by_id = :u"),
            {"u": f["annotator"]},
        ),
        (
            "reviewers",
            _query(_item("reviewers", "contains", "List", f["reviewer"])),
            "EXISTS (SELECT 1 FROM reviews r JOIN annotations a ON a.id = r.annotation_id"
            " WHERE a.task_id = t.id AND r.reviewer_id = :u)",
            {"u": f["reviewer"]},
        ),
        (
            "review state",
            _query(_item("reviews_rejected", "greater", "Number", 0)),
            ann.format("a.review_status = 'rejected'"),
            {},
        ),
        (
            "reviewed",
            _query(_item("reviewed", "equal", "Boolean", True)),
            ann.format("a.review_status IS NOT NULL"),
            {},
        ),
        (
            "prediction score",
            _query(_item("predictions_score", "less", "Number", 0.5)),
            f"{newest_score} < 0.5",
            {},
        ),
        (
            "model version",
            _query(_item("predictions_model_versions", "contains", "String", "v2")),
            pred.format("p.model_version = 'v2'"),
            {},
        ),
        (
            "prediction result",
            _query(_item("predictions_results", "contains", "String", "negative")),
            pred.format(f"lower({result_text.format('p')}) LIKE '%negative%'"),
            {},
        ),
        (
            "annotation result",
            _query(_item("annotations_results", "contains", "String", "Neutral")),
            ann.format(f"{result_text.format('a')} LIKE '%Neutral%'"),
            {},
        ),
        (
            "updated time",
            _query(_item("updated_at", "greater", "Datetime", f["before"].isoformat())),
            "t.updated_at > :before",
            {"before": before},
        ),
        (
            "created time",
            _query(_item("created_at", "less", "Datetime", f["before"].isoformat())),
            "t.created_at < :before",
            {"before": before},
        ),
        ("ground truth", _query(_item("ground_truth", "equal", "Boolean", True)), ann.format("a.ground_truth"), {}),
        (
            "or",
            _query(
                _item("data.tag", "equal", "String", "blue"),
                _item("total_annotations", "greater", "Number", 0),
                conjunction="or",
            ),
            f"{data('tag')} = 'blue' OR " + ann.format("NOT a.was_cancelled"),
            {},
        ),
        (
            "three and",
            _query(
                _item("data.tag", "not_equal", "String", "red"),
                _item("completed_at", "empty", "Datetime", True),
                _item("predictions_score", "greater", "Number", 0.2),
            ),
            f"{data('tag')} <> 'red' AND NOT t.is_labeled AND {newest_score} > 0.2",
            {},
        ),
    ]


def test_each_filter_family_matches_the_same_filter_in_sql(live_server, labeled):
    ls = _sdk(live_server)
    project = labeled["project"]
    checked = []
    for family, query, condition, params in _cases(live_server, labeled):
        wanted = _by_hand(
            live_server,
            f"SELECT t.id FROM tasks t WHERE t.project_id = :pid AND ({condition}) ORDER BY t.id",
            pid=project,
            lo=labeled["ids"][5],
            hi=labeled["ids"][15],
            **params,
        )
        got = _listed(ls, project, query)
        assert got == wanted, family
        assert 0 < len(wanted) < N + 1, family  # each case selects something, and not everything
        checked.append(family)
    assert len(checked) == 26


def test_ordering_and_keyset_paging(api, live_server, labeled):
    ls = _sdk(live_server)
    project = labeled["project"]
    query = json.dumps({"ordering": ["-tasks:predictions_score"]})
    got = [t.id for t in ls.tasks.list(project=project, query=query, page_size=6)]
    # Highest score first, tasks without predictions last; ties by id, descending.
    wanted = _by_hand(
        live_server,
        "SELECT t.id FROM tasks t WHERE t.project_id = :pid"
        " ORDER BY t.prediction_score IS NULL, t.prediction_score DESC, t.id DESC",
        pid=project,
    )
    assert got == wanted and len(got) == N + 1
    # Keyset: after=<last id of a page> walks the same order.
    walked, after = [], None
    while True:
        params: dict[str, Any] = {"project": project, "query": query, "page_size": 6}
        if after is not None:
            params["after"] = after
        page = api.get("/api/tasks/", params=params).json()["tasks"]
        if not page:
            break
        walked += [t["id"] for t in page]
        after = page[-1]["id"]
    assert walked == wanted
    # Ordered by a data field, ascending; selectedItems narrows to a few ids.
    chosen = labeled["ids"][3:9]
    query = json.dumps({"ordering": ["tasks:data.tag"], "selectedItems": {"all": False, "included": chosen}})
    got = [t.id for t in ls.tasks.list(project=project, query=query)]
    assert got == sorted(chosen, key=lambda i: (TAGS[labeled["ids"].index(i) % 3], i))


def test_a_walk_counts_its_list_once(api, text_project, live_server):
    pid = text_project["id"]
    ids = import_tasks(api, pid, [{"text": f"t{i}", "n": i} for i in range(6)])
    query = _query(_item("data.n", "less", "Number", 4))
    first = api.get("/api/tasks/", params={"project": pid, "page_size": 2, "query": query}).json()
    assert first["total"] == 4
    # A change the count cannot see without counting again: the walk keeps the total it started with.
    with live_server.session_factory() as session:
        session.execute(text("UPDATE tasks SET data = :d WHERE id = :id"), {"d": '{"text": "x", "n": 9}', "id": ids[0]})
        session.commit()
    second = api.get("/api/tasks/", params={"project": pid, "page_size": 2, "page": 2, "query": query}).json()
    assert second["total"] == 4 and [t["id"] for t in second["tasks"]] == ids[3:4]
    # A first page counts again.
    again = api.get("/api/tasks/", params={"project": pid, "page_size": 2, "query": query}).json()
    assert again["total"] == 3


def test_views_crud_through_the_sdk(api, live_server, labeled):
    ls = _sdk(live_server)
    project = labeled["project"]
    filters = {"conjunction": "and", "items": [_item("data.tag", "equal", "String", "green")]}
    view = ls.views.create(project=project, data={"filters": filters, "ordering": ["-tasks:id"]})
    assert view.id and view.project == project and view.data["filters"] == filters
    raw = api.get(f"/api/dm/views/{view.id}/").json()
    assert raw["ordering"] == ["-tasks:id"] and raw["user"] is not None

    other = ls.views.create(project=project, data={"filters": {"conjunction": "or", "items": []}})
    assert [v.id for v in ls.views.list(project=project)] == [view.id, other.id]
    assert ls.views.get(id=str(view.id)).data["filters"] == filters

    green = [t.id for t in ls.tasks.list(project=project, view=view.id)]
    wanted = [i for n, i in enumerate(labeled["ids"]) if TAGS[n % 3] == "green"]
    assert green == sorted(wanted, reverse=True)  # the view's ordering

    blue = {"conjunction": "and", "items": [_item("data.tag", "equal", "String", "blue")]}
    updated = ls.views.update(id=str(view.id), data={"filters": blue})
    assert updated.data["filters"] == blue
    got = [t.id for t in ls.tasks.list(project=project, view=view.id)]
    assert got == [i for n, i in enumerate(labeled["ids"]) if TAGS[n % 3] == "blue"]

    assert api.post("/api/dm/views/order/", json={"project": project, "ids": [other.id, view.id]}).status_code == 204
    assert [v.id for v in ls.views.list(project=project)] == [other.id, view.id]

    ls.views.delete(id=str(view.id))
    assert [v.id for v in ls.views.list(project=project)] == [other.id]
    assert api.get(f"/api/dm/views/{view.id}/").status_code == 404
    ls.views.delete_all(project=project)
    assert ls.views.list(project=project) == []


def test_views_belong_to_their_author(api, live_server, labeled):
    project = labeled["project"]
    view = api.post("/api/dm/views/", json={"project": project, "data": {"title": "mine"}}).json()
    with member(api, live_server, project, "annotator", "other-annotator") as other:
        assert other.get("/api/dm/views/", params={"project": project}).json() == []  # not theirs
        assert other.get(f"/api/dm/views/{view['id']}/").status_code == 200  # but readable, and usable
        r = other.patch(f"/api/dm/views/{view['id']}/", json={"data": {}})
        assert r.status_code == 403 and "another user" in r.json()["detail"]
    stranger_project = api.post("/api/projects/", json={"title": "elsewhere"}).json()["id"]
    r = api.get("/api/tasks/", params={"project": stranger_project, "view": view["id"]})
    assert r.status_code == 400 and "belongs to project" in r.json()["detail"]


@pytest.mark.parametrize(
    ("query", "named"),
    [
        (_query(_item("nope", "equal", "Number", 1)), "filter:tasks:nope"),
        (_query(_item("id", "sideways", "Number", 1)), "'sideways'"),
        (_query(_item("id", "equal", "Complex", 1)), "'Complex'"),
        (_query(_item("id", "contains", "Number", 1)), "query.filters.items[0].operator"),
        (_query(_item("id", "equal", "Number", "many")), "query.filters.items[0].value"),
        (_query(_item("data.text", "regex", "String", "(")), "not a valid regular expression"),
        (_query(_item("data.text", "regex", "String", "a" * 201)), "longer than 200"),
        (_query(_item("data.x'y", "equal", "String", "a")), "data keys"),
        (_query(_item("agreement", "greater", "Number", 1)), "agreement is not computed"),
        (_query(*[_item("id", "greater", "Number", i) for i in range(51)]), "at most 50"),
        (json.dumps({"ordering": ["tasks:annotators"]}), "cannot order by 'tasks:annotators'"),
        (json.dumps({"selectedItems": {"all": False, "included": "x"}}), "query.selectedItems"),
        ("{not json", "query: not valid JSON"),
        (_query(_item("data.text", "equal", "String", "a\u0000b")), "NUL"),
        (_query(_item("created_at", "less", "Datetime", "0001-01-01T00:00:00+14:00")), "date-time in range"),
    ],
)
def test_bad_queries_are_400_naming_the_part(api, text_project, query, named):
    r = api.get("/api/tasks/", params={"project": text_project["id"], "query": query})
    assert r.status_code == 400, r.text
    assert named in r.json()["detail"]


def test_out_of_range_numbers_are_answered(api, text_project):
    r = api.get("/api/tasks/", params={"project": text_project["id"], "view": 2**40})
    assert r.status_code == 404
    huge = _query(_item("id", "equal", "Number", 2**63 + 5))
    r = api.get("/api/tasks/", params={"project": text_project["id"], "query": huge})
    assert r.status_code == 400 and "integer out of range" in r.json()["detail"]
    r = api.get(
        "/api/tasks/", params={"project": text_project["id"], "query": _query(_item("id", "less", "Number", 1e300))}
    )
    assert r.status_code == 200 and r.json()["total"] == 0


def test_a_regex_postgresql_refuses_is_a_400(api, live_server, text_project):
    # Valid in Python (SQLite runs it there), refused by PostgreSQL's engine: a 400 there, never a 500.
    query = _query(_item("data.text", "regex", "String", "(?P<word>a)"))
    r = api.get("/api/tasks/", params={"project": text_project["id"], "query": query})
    created = api.post("/api/dm/views/", json={"project": text_project["id"], "data": orjson.loads(query)})
    if live_server.backend == "postgres":
        assert r.status_code == 400 and "query.filters.items[0].value: PostgreSQL refuses" in r.json()["detail"]
        assert created.status_code == 400 and "data.filters.items[0].value" in created.json()["detail"]
    else:
        assert r.status_code == 200 and created.status_code == 201


def test_a_saved_view_must_compile(api, text_project):
    bad = {"filters": {"conjunction": "and", "items": [_item("id", "equal", "Weird", 1)]}}
    r = api.post("/api/dm/views/", json={"project": text_project["id"], "data": bad})
    assert r.status_code == 400 and "data.filters.items[0].type" in r.json()["detail"]


def test_next_is_confined_to_a_view(api, live_server, labeled):
    project = labeled["project"]
    filters = {
        "conjunction": "and",
        "items": [_item("data.tag", "equal", "String", "green"), _item("data.n", "greater", "Number", 20)],
    }
    view = api.post("/api/dm/views/", json={"project": project, "data": {"filters": filters}}).json()
    in_view = [
        task_id
        for i, task_id in enumerate(labeled["ids"])
        if TAGS[i % 3] == "green" and i > 20 and task_id not in labeled["labeled"]
    ]
    assert in_view
    with member(api, live_server, project, "annotator", "labeler") as labeler:
        handed = []
        while True:
            r = labeler.get(f"/api/projects/{project}/next/", params={"view": view["id"]})
            if r.status_code == 404:
                break
            assert r.status_code == 200, r.text
            handed.append(r.json()["id"])
            r = labeler.post(f"/api/tasks/{handed[-1]}/annotations/", json={"result": choice("Positive")})
            assert r.status_code == 201, r.text
        assert handed == in_view
        # Without the view the stream goes on with the rest of the project.
        assert labeler.get(f"/api/projects/{project}/next/").status_code == 200


def test_export_takes_a_view(api, live_server, labeled):
    project = labeled["project"]
    items = [
        _item("annotators", "contains", "List", labeled["annotator"]),
        _item("total_annotations", "greater", "Number", 0),
    ]
    view = api.post("/api/dm/views/", json={"project": project, "data": {"filters": {"items": items}}}).json()
    wanted = _by_hand(
        live_server,
        "SELECT DISTINCT task_id FROM annotations"
        " WHERE project_id = :pid AND completed_by_id = :u AND NOT was_cancelled ORDER BY task_id",
        pid=project,
        u=labeled["annotator"],
    )
    params = {"exportType": "JSON", "download_all_tasks": "true", "view": view["id"]}
    exported = orjson.loads(api.get(f"/api/projects/{project}/export", params=params).content)
    assert [t["id"] for t in exported] == wanted
    params["exportType"] = "CSV"
    rows = list(csv.DictReader(io.StringIO(api.get(f"/api/projects/{project}/export", params=params).text)))
    assert [int(r["id"]) for r in rows] == wanted and {"text", "tag", "n"} <= set(rows[0])
    # Through the SDK's synchronous export too (the view as an extra query parameter).
    ls = _sdk(live_server)
    body = b"".join(
        ls.projects.exports.download_sync(
            id=project,
            export_type="JSON",
            download_all_tasks=True,
            request_options={"additional_query_parameters": {"view": view["id"]}},
        )
    )
    assert [t["id"] for t in orjson.loads(body)] == wanted


def test_model_version_chooses_the_predictions_served(api, live_server):
    project = api.post(
        "/api/projects/", json={"title": "mv", "label_config": TEXT_CONFIG, "model_version": "v2"}
    ).json()
    task = {
        "data": {"text": "x"},
        "predictions": [
            {"result": choice("Negative"), "score": 0.9, "model_version": "v1"},
            {"result": choice("Positive"), "score": 0.4, "model_version": "v2"},
        ],
    }
    [task_id] = import_tasks(api, project["id"], [task])
    got = api.get(f"/api/tasks/{task_id}/").json()
    assert [p["model_version"] for p in got["predictions"]] == ["v2", "v1"]  # the chosen version first
    listed = api.get("/api/tasks/", params={"project": project["id"], "fields": "all"}).json()["tasks"]
    assert [p["model_version"] for p in listed[0]["predictions"]] == ["v2", "v1"]
    with member(api, live_server, project["id"], "annotator", "pre") as annotator:
        served = annotator.get(f"/api/projects/{project['id']}/next/").json()
        assert [p["model_version"] for p in served["predictions"]] == ["v2"]  # pre-annotations: that version only
