"""Generate the demo data (written for this project; deterministic; run from the repo root).

Task: answer short factual questions with a fixed machine-readable format, a JSON object
``{"answer": "..."}``. A 135M model cannot learn many new facts in a few CPU minutes, but it can
learn an answer format: the held-out set measures format compliance and exact answers.
Rows follow the Open-Platypus schema (instruction, input, output, data_source).
"""

import json
import random
from pathlib import Path

CAPITALS = {
    "France": "Paris", "Germany": "Berlin", "Italy": "Rome", "Spain": "Madrid", "Japan": "Tokyo",
    "China": "Beijing", "Russia": "Moscow", "Egypt": "Cairo", "Canada": "Ottawa",
    "Australia": "Canberra", "Brazil": "Brasilia", "India": "New Delhi", "Kenya": "Nairobi",
    "Greece": "Athens", "Portugal": "Lisbon", "Norway": "Oslo", "Sweden": "Stockholm",
    "Finland": "Helsinki", "Poland": "Warsaw", "Austria": "Vienna", "Ireland": "Dublin",
    "Peru": "Lima", "Chile": "Santiago", "Argentina": "Buenos Aires", "Mexico": "Mexico City",
    "South Korea": "Seoul", "Thailand": "Bangkok", "Vietnam": "Hanoi", "Turkey": "Ankara",
    "Hungary": "Budapest", "Denmark": "Copenhagen", "Belgium": "Brussels", "Cuba": "Havana",
}
OPPOSITES = {
    "hot": "cold", "big": "small", "fast": "slow", "up": "down", "happy": "sad", "light": "dark",
    "open": "closed", "early": "late", "full": "empty", "strong": "weak", "high": "low",
    "young": "old", "rich": "poor", "hard": "soft", "wet": "dry", "loud": "quiet",
    "thick": "thin", "long": "short", "near": "far", "clean": "dirty", "win": "lose",
    "push": "pull", "buy": "sell", "first": "last", "inside": "outside", "true": "false",
}
PLURALS = {
    "child": "children", "mouse": "mice", "foot": "feet", "tooth": "teeth", "goose": "geese",
    "man": "men", "woman": "women", "person": "people", "box": "boxes", "city": "cities",
    "leaf": "leaves", "knife": "knives", "wolf": "wolves", "cactus": "cacti", "bus": "buses",
    "baby": "babies", "potato": "potatoes", "sheep": "sheep", "fish": "fish", "ox": "oxen",
}


def qa_items(rng: random.Random) -> list[tuple[str, str | None, str, str]]:
    """(instruction, input, answer, kind) tuples covering four kinds of questions."""
    items = []
    for country, city in CAPITALS.items():
        items.append((f"What is the capital of {country}?", None, city, "capital"))
    for word, opposite in OPPOSITES.items():
        items.append(("Give the opposite of the word.", word, opposite, "opposite"))
    for word, plural in PLURALS.items():
        items.append((f"What is the plural of '{word}'?", None, plural, "plural"))
    for _ in range(160):
        a, b = rng.randint(2, 49), rng.randint(2, 49)
        items.append(("Add the two numbers.", f"{a} + {b}", str(a + b), "arithmetic"))
    return items


def to_row(instruction: str, inp: str | None, answer: str) -> dict:
    return {"instruction": instruction, "input": inp or "",
            "output": json.dumps({"answer": answer}), "data_source": "a3duck-demo"}


def main() -> None:
    rng = random.Random(1234)
    items = qa_items(rng)
    rng.shuffle(items)
    held_out, train = items[:40], items[40:]
    out = Path(__file__).parent
    for name, rows in (("train.jsonl", train), ("eval.jsonl", held_out)):
        with open(out / name, "w", encoding="utf-8") as fh:
            for instruction, inp, answer, _ in rows:
                fh.write(json.dumps(to_row(instruction, inp, answer)) + "\n")
    print(f"wrote {len(train)} train and {len(held_out)} held-out rows to {out}")


if __name__ == "__main__":
    main()
