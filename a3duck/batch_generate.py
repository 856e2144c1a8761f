"""Greedy answers for many (prompt, adapter) rows, generated together in left-padded batches.

``a3duck compare`` answers every held-out prompt twice (base and adapter). One row at a time
that is 80 ``generate`` calls of one row each; here the base rows and the adapter rows share
batches through :class:`a3duck.multi_adapter.MultiAdapterModel`, whose rows each use their own
IA3 vectors exactly (row ``r`` equals that adapter's own ``PeftModel``; see that module and
``tests/test_train_multi_adapter.py``). Left padding with an attention mask and position ids from
the mask keeps every row's tokens where they would be alone; a row that reaches EOS is cut
there, as a one-row ``generate`` stops there.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

# Rows per generate call (measured on the demo: 40 rows 149 s vs 16 rows 264 s, busy CPU;
# the bar still moves twice on the demo's 40 prompts x 2 sides; padding waste stays small).
BATCH_ROWS = 40


def greedy_rows(multi, tokenizer, prompts: Sequence[str], adapters: Sequence[str],
                max_new_tokens: int, add_special_tokens: bool = True,
                batch_rows: int = BATCH_ROWS) -> Iterator[list[str]]:
    """For consecutive chunks of rows, yield their decoded greedy continuations (special tokens
    skipped, nothing after the first EOS): row ``i`` is ``prompts[i]`` under ``adapters[i]``."""
    for start in range(0, len(prompts), batch_rows):
        chunk = range(start, min(start + batch_rows, len(prompts)))
        ids = [tokenizer(prompts[i], add_special_tokens=add_special_tokens)["input_ids"]
               for i in chunk]
        yield _generate(multi, tokenizer, ids, [adapters[i] for i in chunk], max_new_tokens)


def _generate(multi, tokenizer, rows: list[list[int]], names: list[str],
              max_new_tokens: int) -> list[str]:
    import torch

    width = max(len(r) for r in rows)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None \
        else tokenizer.eos_token_id
    ids = torch.tensor([[pad] * (width - len(r)) + r for r in rows])
    mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows])
    with torch.inference_mode():
        out = multi.generate(names, input_ids=ids.to(multi.device),
                             attention_mask=mask.to(multi.device),
                             max_new_tokens=max_new_tokens, do_sample=False,
                             repetition_penalty=1.0, pad_token_id=pad,
                             eos_token_id=tokenizer.eos_token_id)
    return [tokenizer.decode(_until_eos(row[width:].tolist(), tokenizer.eos_token_id),
                             skip_special_tokens=True) for row in out]


def _until_eos(tokens: list[int], eos) -> list[int]:
    """The tokens before the first end-of-sequence id (``eos``: one id, a list, or None)."""
    stops = set(eos if isinstance(eos, (list, tuple)) else [eos]) - {None}
    for k, token in enumerate(tokens):
        if token in stops:
            return tokens[:k]
    return tokens
