"""A tiny ML backend written with Label Studio's own SDK (label-studio-ml), for compatibility tests.

Run by a Python that has `label_studio_ml` installed (it conflicts with our dev extra, so it
usually lives in its own virtualenv):  python lsml_keyword_backend.py PORT MODEL_DIR
It labels a text "Sports" when it mentions a ball, else "Politics", with fixed scores.
"""

import sys

from label_studio_ml.api import init_app
from label_studio_ml.model import LabelStudioMLBase


class KeywordBackend(LabelStudioMLBase):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        from_name, info = next(iter(self.parsed_label_config.items()))
        self.from_name, self.to_name = from_name, info["to_name"][0]
        self.value = info["inputs"][0]["value"]

    def predict(self, tasks, **kwargs):
        predictions = []
        for task in tasks:
            text = task["data"][self.value].lower()
            label, score = ("Sports", 0.9) if "ball" in text else ("Politics", 0.6)
            result = [
                {"from_name": self.from_name, "to_name": self.to_name, "type": "choices", "value": {"choices": [label]}}
            ]
            predictions.append({"result": result, "score": score})
        return predictions

    def fit(self, tasks, workdir=None, **kwargs):
        return {"event": kwargs.get("event"), "seen": True}


if __name__ == "__main__":
    port, model_dir = int(sys.argv[1]), sys.argv[2]
    app = init_app(model_class=KeywordBackend, model_dir=model_dir)
    app.run(host="127.0.0.1", port=port, debug=False, use_reloader=False)
