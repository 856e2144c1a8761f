"""How close an exported model is to the IA3 model it came from, on held-out prompts.

Both models read the same token sequences (teacher forcing); at every position we compare the
next-token distributions: ``mean_kl`` is KL(P_ia3 || P_export) in nats averaged over all
positions, ``top1_agreement`` the share of positions whose most likely next token is the same,
``max_abs_logit`` the largest logit difference. The sequences are the adapter's own prompt
template applied to held-out rows (``--data``: a file of instruction or conversation rows; the
reference answer is included, so answer positions count) or, without data, to
:data:`DEFAULT_PROMPTS`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

# Held-out prompts (none is in the demo data): mixed tasks, so the measurement is not about one
# answer style.
DEFAULT_PROMPTS = (
    "What is the capital of France?",
    "Write a haiku about autumn leaves.",
    "Explain in one sentence why the sky is blue.",
    "What is 17 times 3?",
    "Give three tips for staying focused while studying.",
    "Translate 'good morning' into Spanish.",
    "Summarise the plot of Romeo and Juliet in two sentences.",
    "Which is heavier, a kilogram of feathers or a kilogram of iron?",
    "Write a Python function that reverses a string.",
    "Name a mammal that can fly.",
    "What does DNA stand for?",
    "Describe the water cycle for a ten-year-old.",
)


@dataclass(frozen=True)
class Fidelity:
    mean_kl: float  # nats per position
    top1_agreement: float  # 0..1
    max_abs_logit: float
    positions: int
    prompts: int

    def as_dict(self) -> dict:
        return {"mean_kl": self.mean_kl, "top1_agreement": self.top1_agreement,
                "max_abs_logit": self.max_abs_logit, "positions": self.positions,
                "prompts": self.prompts}

    def line(self) -> str:
        return (f"mean KL {self.mean_kl:.2e} nats, top-1 agreement {self.top1_agreement:.2%}, "
                f"max |logit diff| {self.max_abs_logit:.3g} ({self.positions} positions, "
                f"{self.prompts} held-out prompts)")


def held_out_ids(adapter: str, tokenizer, data: str | None = None, limit: int = 16
                 ) -> list[torch.Tensor]:
    """Token ids (one 1 x T tensor per text) of the held-out texts in the adapter's template."""
    from a3duck import adapter_folder
    from a3duck import data as data_mod
    from a3duck.compare import prompt_of
    from a3duck.prompts import get_template

    template = get_template(adapter_folder.template(adapter_folder.resolve(adapter)),
                            tokenizer)
    if data:
        rows = data_mod.load_rows(data)[:limit]
        examples = data_mod.normalise(rows, data, template.name, False,
                                      data_mod.DataReport(source=data))
        texts = [prompt_of(ex, template) + ex.completion for ex in examples]
    else:
        texts = [template.render(p) for p in DEFAULT_PROMPTS[:limit]]
    return [tokenizer(t, return_tensors="pt", add_special_tokens=template.add_special_tokens
                      )["input_ids"] for t in texts]


@torch.inference_mode()
def logits_of(model, batches: list[torch.Tensor]) -> list[torch.Tensor]:
    """Float32 next-token logits of ``model`` for each sequence."""
    return [model(input_ids=ids).logits[0].float() for ids in batches]


def compare(reference: list[torch.Tensor], other: list[torch.Tensor]) -> Fidelity:
    """Fidelity of ``other``'s logits against ``reference``'s (same sequences)."""
    kl_sum, agree, positions, worst = 0.0, 0, 0, 0.0
    for ref, oth in zip(reference, other):
        p_log, q_log = torch.log_softmax(ref.double(), -1), torch.log_softmax(oth.double(), -1)
        kl = (p_log.exp() * (p_log - q_log)).sum(-1).clamp_min(0)
        kl_sum += float(kl.sum())
        agree += int((ref.argmax(-1) == oth.argmax(-1)).sum())
        positions += ref.shape[0]
        worst = max(worst, float((ref - oth).abs().max()))
    return Fidelity(kl_sum / max(positions, 1), agree / max(positions, 1), worst, positions,
                    len(reference))
