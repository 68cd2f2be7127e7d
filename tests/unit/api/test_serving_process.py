"""What `kubelabel serve` does to its own process (and only to it)."""

from __future__ import annotations

import gc

from api_server import server


def test_a_serving_process_freezes_the_loaded_app_out_of_the_garbage_collector():
    before = gc.get_freeze_count()
    app = object()
    try:
        assert server._settled(app) is app
        assert gc.get_freeze_count() > before
    finally:
        gc.unfreeze()  # this test process is not a server
