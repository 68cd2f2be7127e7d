"""Every tag the issue names renders in the editor under the page's Content-Security-Policy, with
media from another origin (as presigned bucket links are); a config with a tag the editor lacks
gets the validator's warning on the page; scripts inside task HTML do not run."""

from __future__ import annotations

import io
import threading
import wave
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.integration.web.conftest import add_member, create_user, png

CONFIG = """<View>
  <Text name="text" value="$text"/>
  <Labels name="ner" toName="text"><Label value="PER"/></Labels>
  <Choices name="multi" toName="text" choice="multiple"><Choice value="A"/><Choice value="B"/></Choices>
  <TextArea name="note" toName="text"/>
  <Rating name="stars" toName="text"/>
  <Taxonomy name="tax" toName="text"><Choice value="Animal"><Choice value="Cat"/></Choice></Taxonomy>
  <Image name="image" value="$image"/>
  <PolygonLabels name="poly" toName="image"><Label value="Road"/></PolygonLabels>
  <KeyPointLabels name="kp" toName="image"><Label value="Eye"/></KeyPointLabels>
  <Audio name="audio" value="$audio"/>
  <Paragraphs name="dialog" value="$dialog" nameKey="author" textKey="text"/>
  <HyperText name="html" value="$html"/>
  <Relations name="rel"><Relation value="is"/></Relations>
</View>"""
# Task HTML that would run code if scripts in it ran.
HOSTILE = (
    '<p>Some <b>bold</b> text</p><script>parent.document.title = "pwned"</script>'
    '<img src="x" onerror="parent.pwned = 1">'
)


def wav() -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as sound:
        sound.setnchannels(1)
        sound.setsampwidth(2)
        sound.setframerate(8000)
        sound.writeframes(b"\x00\x10" * 8000)
    return out.getvalue()


@pytest.fixture
def media_host() -> Iterator[str]:
    """Another origin serving an image and a sound, with CORS open as a bucket for Label Studio needs."""
    files = {"/green.png": (png(200, 100, (0, 128, 0)), "image/png"), "/beep.wav": (wav(), "audio/wav")}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the standard library's name
            body, kind = files[self.path]
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Access-Control-Allow-Origin", "*")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("live_server", ["sqlite"], indirect=True)
def test_every_named_tag_renders_and_labels(live_server, api, web, media_host):
    pid = api.post("/api/projects/", json={"title": "All tags", "label_config": CONFIG}).json()["id"]
    task = {
        "text": "Alice met Bob",
        "image": f"{media_host}/green.png",
        "audio": f"{media_host}/beep.wav",
        "dialog": [{"author": "Ann", "text": "hi"}, {"author": "Bo", "text": "hello there"}],
        "html": HOSTILE,
    }
    assert api.post(f"/api/projects/{pid}/import", json=[task]).status_code == 201
    ann = create_user(api, "ann", "ann-secret-pw1")
    add_member(api, pid, ann["id"], "annotator")
    annotator = web("annotator")
    annotator.expected_errors = ("inline script", "inline event handler")  # the task's HTML, refused
    annotator.sign_in("ann", "ann-secret-pw1")
    annotator.open(f"#/p/{pid}/label")
    page = annotator.page
    page.wait_for_selector("#editor wave canvas")  # the audio's waveform: its fetch was allowed
    shown = page.inner_text("#editor")
    assert "There was an issue loading URL" not in shown
    for text in ("Alice met Bob", "PER", "Road", "Eye", "Click to add", "hello there", "Play"):
        assert text in shown, text
    assert page.evaluate("() => document.querySelector('#editor img').naturalWidth") == 200
    assert page.locator("#editor .ant-rate").count() == 1
    html = page.evaluate("() => document.querySelector('iframe.lsf-htx-richtext').contentDocument.body.innerHTML")
    assert "<b>bold</b>" in html
    # The editor's iframes inherit the page's policy: the task's script and handler never ran.
    assert page.title() == "kubelabel"
    assert page.evaluate("() => window.pwned") is None
    assert any("inline event handler" in m for m in annotator.csp_blocked)
    assert page.locator("#config-warnings").is_hidden()
    annotator.shot("every-tag")

    # Multiple choices, a rating, a text area: labeled and stored.
    annotator.choose("A")
    annotator.choose("B")
    page.locator("#editor .ant-rate-star").nth(3).click()
    page.fill("#editor textarea, #editor input[name=note]", "two people")
    page.keyboard.press("Enter")
    annotator.click_button("Submit")
    page.wait_for_selector("#done")
    [stored] = api.get(f"/api/projects/{pid}/tasks/").json()[0]["annotations"]
    values = {r["from_name"]: r["value"] for r in stored["result"]}
    assert values == {"multi": {"choices": ["A", "B"]}, "stars": {"rating": 4}, "note": {"text": ["two people"]}}


@pytest.mark.parametrize("live_server", ["sqlite"], indirect=True)
def test_a_tag_the_editor_lacks_is_named_on_the_page(live_server, api, web):
    config = """<View><Text name="text" value="$text"/>
      <Choices name="c" toName="text"><Choice value="A"/></Choices><DateTime name="when" toName="text"/></View>"""
    pid = api.post("/api/projects/", json={"title": "Dates", "label_config": config}).json()["id"]
    api.post(f"/api/projects/{pid}/import", json=[{"text": "when was it"}])
    admin = create_user(api, "ada", "ada-secret-pw1", role="admin")
    user = web("admin")
    user.expected_errors = ("No model registered for tag: datetime",)  # the editor's own complaint
    user.sign_in(admin["username"], "ada-secret-pw1")
    user.open(f"#/p/{pid}/label", ready="#config-warnings:not([hidden])")
    assert user.page.inner_text("#config-warnings").startswith("<DateTime> is accepted by the API but")
