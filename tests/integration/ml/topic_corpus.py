"""A small labeled text data set: short sentences about three topics, generated with a fixed seed.

Each topic has its own vocabulary, large enough that a handful of annotations covers only part
of it (so a model trained on more annotations predicts held-out sentences better), and some
sentences borrow a word from another topic (so predictions differ in confidence).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

LABEL_CONFIG = """<View>
  <Text name="text" value="$text"/>
  <Choices name="topic" toName="text" choice="single">
    <Choice value="Sports"/>
    <Choice value="Politics"/>
    <Choice value="Cooking"/>
  </Choices>
</View>"""


def _words(text: str) -> list[str]:
    return text.split()


TOPICS: dict[str, list[str]] = {
    "Sports": _words(
        "football goal striker referee stadium league coach penalty match tournament athlete sprint "
        "marathon medal tennis racket basketball dunk pitcher inning season playoff champion defender "
        "keeper dribble tackle relay hurdle swimmer"
    ),
    "Politics": _words(
        "election senator parliament ballot campaign minister policy vote governor congress debate "
        "reform coalition treaty diplomat president cabinet mayor legislation budget opposition party "
        "referendum lobby embassy sanctions veto amendment constituency"
    ),
    "Cooking": _words(
        "recipe oven garlic simmer dough bake flour spice onion saute kitchen chef sauce roast pasta "
        "butter whisk skillet marinade broth basil pepper dessert caramel knead grill tomato ginger "
        "vinegar yeast"
    ),
}
FILLER = _words("the a today new big after again really very about with for our local some every this")


@dataclass(frozen=True)
class Sample:
    text: str
    label: str


def generate(n: int = 200, seed: int = 7, borrow: float = 0.35) -> list[Sample]:
    rng = random.Random(seed)
    labels = sorted(TOPICS)
    samples = []
    for i in range(n):
        label = labels[i % len(labels)]
        words = rng.sample(TOPICS[label], 3) + rng.sample(FILLER, 3)
        if rng.random() < borrow:
            other = rng.choice([x for x in labels if x != label])
            words.append(rng.choice(TOPICS[other]))
        rng.shuffle(words)
        samples.append(Sample(" ".join(words), label))
    rng.shuffle(samples)
    return samples
