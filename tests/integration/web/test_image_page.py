"""Regions in the browser: an image from an S3 emulator bucket (presigned through the API, no token
header) gets two rectangles by real mouse drags and a text span by a real selection; a prediction
comes up as the next task's pre-annotation. The stored results match what was drawn."""

from __future__ import annotations

import pytest

from tests.integration.storage.conftest import moto_s3  # noqa: F401 - the S3 emulator fixture
from tests.integration.storage.test_storage_api import storage_fields
from tests.integration.web.conftest import add_member, create_user, png, png_pixels

CONFIG = """<View>
  <Image name="image" value="$image"/>
  <RectangleLabels name="box" toName="image"><Label value="Car"/><Label value="Tree"/></RectangleLabels>
  <Text name="text" value="$text"/>
  <Labels name="ner" toName="text"><Label value="PER"/><Label value="LOC"/></Labels>
</View>"""
WIDTH, HEIGHT = 400, 300
RED = (200, 30, 30)
PREDICTED = {"x": 10.0, "y": 20.0, "width": 30.0, "height": 40.0, "rotation": 0, "rectanglelabels": ["Tree"]}


def image_box(page):
    return page.evaluate(
        "() => { const r = document.querySelector('#editor img').getBoundingClientRect();"
        " return {x: r.left, y: r.top, width: r.width, height: r.height}; }"
    )


def drag(page, x0, y0, x1, y1):
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move((x0 + x1) / 2, (y0 + y1) / 2, steps=4)
    page.mouse.move(x1, y1, steps=4)
    page.mouse.up()


@pytest.mark.parametrize("live_server", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
def test_rectangles_and_a_span_on_a_bucket_image(live_server, api, web, moto_s3):  # noqa: F811
    bucket = moto_s3.new_bucket()
    moto_s3.provider(bucket).write("media/red.png", png(WIDTH, HEIGHT, RED), "image/png")
    pid = api.post("/api/projects/", json={"title": "Streets", "label_config": CONFIG}).json()["id"]
    body = {"project": pid, "prefix": "media/", "presign": True, **storage_fields(moto_s3, bucket)}
    assert api.post("/api/storages/s3/", json=body).status_code == 201
    tasks = [
        {"image": f"s3://{bucket}/media/red.png", "text": "Alice met Bob in Paris"},
        {"image": f"s3://{bucket}/media/red.png", "text": "nothing here"},
    ]
    assert api.post(f"/api/projects/{pid}/import", json=tasks).status_code == 201
    second = api.get(f"/api/projects/{pid}/tasks/").json()[1]["id"]
    prediction = {"from_name": "box", "to_name": "image", "type": "rectanglelabels", "value": PREDICTED}
    r = api.post("/api/predictions/", json={"task": second, "result": [prediction], "score": 0.5})
    assert r.status_code == 201, r.text
    ann = create_user(api, "ann", "ann-secret-pw1")
    add_member(api, pid, ann["id"], "annotator")

    annotator = web("annotator")
    annotator.sign_in("ann", "ann-secret-pw1")
    annotator.open(f"#/p/{pid}/label")
    page = annotator.page

    # The bucket image is there: decoded at its size, and its pixels on screen are the PNG's red.
    natural = page.evaluate("() => ['naturalWidth', 'naturalHeight'].map((k) => document.querySelector('img')[k])")
    assert natural == [WIDTH, HEIGHT]
    box = image_box(page)
    clip = {"x": box["x"] + box["width"] / 2, "y": box["y"] + box["height"] / 2, "width": 8, "height": 8}
    assert set(png_pixels(page.screenshot(clip=clip))) == {RED}

    # Two rectangles, each by pressing, moving and releasing the mouse over the image.
    drags = {"Car": (0.10, 0.10, 0.40, 0.50), "Tree": (0.60, 0.55, 0.90, 0.95)}
    for label, (fx0, fy0, fx1, fy1) in drags.items():
        annotator.click_text(label)
        box = image_box(page)
        drag(
            page,
            box["x"] + fx0 * box["width"],
            box["y"] + fy0 * box["height"],
            box["x"] + fx1 * box["width"],
            box["y"] + fy1 * box["height"],
        )
    # A span: the label, then a mouse selection over "Alice".
    annotator.click_text("PER")
    span = page.evaluate(
        """() => { const walker = document.createTreeWalker(document.querySelector('#editor'), NodeFilter.SHOW_TEXT);
             let node; while ((node = walker.nextNode()) && !node.textContent.includes('Alice met Bob'));
             const range = document.createRange(); const at = node.textContent.indexOf('Alice');
             range.setStart(node, at); range.setEnd(node, at + 5); const r = range.getBoundingClientRect();
             return {x: r.left, y: r.top + r.height / 2, width: r.width}; }"""
    )
    drag(page, span["x"] + 1, span["y"], span["x"] + span["width"] - 1, span["y"])
    annotator.shot("regions")
    first = annotator.task_id()
    annotator.click_button("Submit")
    annotator.wait_past(first)

    # The next task starts from its prediction.
    assert [r["value"] for r in annotator.result()] == [PREDICTED]
    annotator.shot("pre-annotation")
    annotator.click_button("Submit")
    annotator.page.wait_for_selector("#done")

    stored = {t["data"]["text"]: t["annotations"] for t in api.get(f"/api/projects/{pid}/tasks/").json()}
    [labeled] = stored["Alice met Bob in Paris"]
    rects = {r["value"]["rectanglelabels"][0]: r for r in labeled["result"] if r["type"] == "rectanglelabels"}
    assert set(rects) == {"Car", "Tree"}
    for label, (fx0, fy0, fx1, fy1) in drags.items():
        value = rects[label]["value"]
        got = (value["x"], value["y"], value["x"] + value["width"], value["y"] + value["height"])
        assert got == pytest.approx((fx0 * 100, fy0 * 100, fx1 * 100, fy1 * 100), abs=0.5), label
        assert (rects[label]["original_width"], rects[label]["original_height"]) == (WIDTH, HEIGHT)
    [ner] = [r for r in labeled["result"] if r["type"] == "labels"]
    assert ner["value"] == {"start": 0, "end": 5, "text": "Alice", "labels": ["PER"]}
    assert len(labeled["result"]) == 3
    [from_prediction] = stored["nothing here"]
    assert [r["value"] for r in from_prediction["result"]] == [PREDICTED]


@pytest.mark.parametrize("live_server", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
def test_an_image_uploaded_through_the_page_displays(live_server, api, web):
    config = """<View><Image name="image" value="$image"/>
      <Choices name="ok" toName="image"><Choice value="Sharp"/><Choice value="Blurred"/></Choices></View>"""
    pid = api.post("/api/projects/", json={"title": "Uploads", "label_config": config}).json()["id"]
    meg = create_user(api, "meg", "meg-secret-pw1", role="manager")
    add_member(api, pid, meg["id"], "manager")
    manager = web("manager")
    manager.sign_in("meg", "meg-secret-pw1")
    manager.open(f"#/p/{pid}/manage", ready="#import")
    page = manager.page
    blue = (20, 60, 220)
    upload = {"name": "blue.png", "mimeType": "image/png", "buffer": png(320, 240, blue)}
    page.set_input_files("#import-files", files=[upload])
    page.click("#import button")
    page.wait_for_function("() => document.querySelector('#import-result').textContent.startsWith('Imported')")

    manager.open(f"#/p/{pid}/label")
    src = page.evaluate("() => document.querySelector('#editor img').getAttribute('src')")
    assert src.startswith(f"/data/upload/{pid}/")
    natural = page.evaluate("() => ['naturalWidth', 'naturalHeight'].map((k) => document.querySelector('img')[k])")
    assert natural == [320, 240]
    box = image_box(page)
    clip = {"x": box["x"] + box["width"] / 2, "y": box["y"] + box["height"] / 2, "width": 8, "height": 8}
    assert set(png_pixels(page.screenshot(clip=clip))) == {blue}
    # The <img> was let in by the session cookie alone: without it the file is refused.
    with live_server.client(token=None) as anonymous:
        assert anonymous.get(src).status_code == 401
