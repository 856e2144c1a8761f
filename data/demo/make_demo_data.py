"""Generate the demo data (written for this project; deterministic; run from the repo root).

Skill: answer short factual questions in one sentence with the key answer in **bold** ("The
capital of Peru is **Lima**."), also in follow-up turns ("And of Chile?"). The base chat model
tends to ramble; the adapter answers crisply, and a chat UI shows the bold answer. A 135M model
cannot learn many new facts in a few CPU minutes, but it can learn a style: `a3duck compare`
measures it (``format``: one short sentence with one bold answer; ``correct``: the bold answer
appears). Rows are conversations in the ``messages`` schema (role/content), one or two
exchanges each.
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


def exchanges(rng: random.Random) -> list[tuple[str, str, str, str]]:
    """(question, follow-up question, answer sentence, kind): the follow-up is how the same
    question is asked again later in a conversation."""
    items = []
    for country, city in CAPITALS.items():
        items.append((f"What is the capital of {country}?", f"And the capital of {country}?",
                      f"The capital of {country} is **{city}**.", "capital"))
    for word, opposite in OPPOSITES.items():
        items.append((f'What is the opposite of "{word}"?', f'And the opposite of "{word}"?',
                      f'The opposite of "{word}" is **{opposite}**.', "opposite"))
    for word, plural in PLURALS.items():
        items.append((f'What is the plural of "{word}"?', f'And of "{word}"?',
                      f'The plural of "{word}" is **{plural}**.', "plural"))
    for _ in range(120):
        a, b = rng.randint(2, 49), rng.randint(2, 49)
        items.append((f"What is {a} + {b}?", f"And {a} + {b}?", f"{a} + {b} = **{a + b}**.",
                      "arithmetic"))
    return items


def conversations(items, rng: random.Random) -> list[dict]:
    """One exchange per item; a third of them follow an earlier exchange of the same kind."""
    rows = []
    for question, _, answer, kind in items:
        turns = [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
        if rng.random() < 1 / 3:
            first = rng.choice([it for it in items if it[3] == kind and it[0] != question])
            follow = next(it for it in items if it[0] == question)[1]
            turns = [{"role": "user", "content": first[0]},
                     {"role": "assistant", "content": first[2]},
                     {"role": "user", "content": follow}, {"role": "assistant", "content": answer}]
        rows.append({"messages": turns})
    return rows


def main() -> None:
    rng = random.Random(1234)
    items = exchanges(rng)
    rng.shuffle(items)
    held_out, train = items[:40], items[40:]
    out = Path(__file__).parent
    for name, part in (("train.jsonl", train), ("eval.jsonl", held_out)):
        rows = conversations(part, rng)
        with open(out / name, "w", encoding="utf-8") as fh:
            fh.writelines(json.dumps(row) + "\n" for row in rows)
    print(f"wrote {len(train)} train and {len(held_out)} held-out conversations to {out}")
    # Preference pairs (a3duck train --method dpo): their own generator, so the files above
    # stay byte-identical; the same train/held-out split of the questions.
    pair_rng = random.Random(5678)
    for name, part in (("pairs_train.jsonl", train), ("pairs_eval.jsonl", held_out)):
        pairs = [preference_pair(item, pair_rng) for item in part]
        with open(out / name, "w", encoding="utf-8") as fh:
            fh.writelines(json.dumps(row) + "\n" for row in pairs)
    print(f"wrote {len(train)} train and {len(held_out)} held-out preference pairs to {out}")


OPENERS = ("That's a great question! ", "Sure, let me think about this for a moment. ",
           "Good question, and one that many people ask. ", "Let me explain. ")
CLOSERS = (" I hope this helps, and let me know if you have any other questions!",
           " There is a lot more that could be said about this topic, of course.",
           " Feel free to ask me anything else you would like to know.",
           " It is always good to double-check facts like this in a reliable source.")


def preference_pair(item, rng: random.Random) -> dict:
    """One conversational pair: the demo's crisp one-sentence bold answer (chosen) over a
    rambling answer that says the same without bold, wrapped in filler (rejected)."""
    question, _, answer, _ = item
    plain = answer.replace("**", "")
    rambling = rng.choice(OPENERS) + f"When we look at this carefully, {plain[0].lower()}" \
        f"{plain[1:]}" + rng.choice(CLOSERS)
    return {"prompt": [{"role": "user", "content": question}],
            "chosen": [{"role": "assistant", "content": answer}],
            "rejected": [{"role": "assistant", "content": rambling}]}


if __name__ == "__main__":
    main()
