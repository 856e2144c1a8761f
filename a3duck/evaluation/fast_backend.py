"""The ``a3duck`` lm-eval model backend: multiple-choice scoring that reads each context once.

Multiple-choice tasks (ARC-25, HellaSwag-10, MMLU-5, TruthfulQA) ask for the log-likelihood of
several continuations after one long few-shot context. lm-eval's ``hf`` backend runs
``context + continuation`` once per answer choice, so the context is re-read 4-5 times.
:class:`A3DuckLM` groups requests by their (tokenised) context and packs each group into one row:

    context tokens | choice 1 tokens[:-1] | choice 2 tokens[:-1] | ...

with position ids restarting after the context for every choice and a block-causal attention
mask (a choice sees the whole context and its own earlier tokens, never another choice). One
forward pass then gives, for every choice, exactly the hidden states the ``hf`` backend computes
for ``context + choice``; several questions are batched per forward pass. Only the rows that score
a continuation go through the output head.

Across documents, prefixes shared by many contexts (MMLU's five shots of a subject, TruthfulQA's
fixed preamble) are read once: :mod:`a3duck.evaluation.prefix_cache` orders the contexts and
picks the prefixes worth caching (at most ``prefix_cache_tokens`` held at once); each prefix's
key/value cache is computed once (on top of its parent prefix's) and every question under it is
scored on a copy expanded to the batch, with position ids continuing after the prefix and a mask
that lets every token see the whole prefix. The caches live for one ``loglikelihood`` call, so
base and each adapter (IA3 rescales keys and values) never share one. :attr:`token_counts` keeps,
per lm-eval task, the tokens a plain per-request run reads and the tokens this backend read.

What is inherited from lm-eval's ``HFLM`` unchanged (so results cannot drift from ``hf``):
tokenisation (context/continuation split, trailing whitespace moved into the continuation,
``add_bos_token``, empty contexts), ``loglikelihood_rolling`` and ``generate_until``. Requests that
``hf`` would left-truncate (context + continuation longer than ``max_length + 1`` tokens),
rolling-window requests and attention implementations without custom 4D masks (flash attention)
also go through ``HFLM``'s own code path.

Importing this module registers the backend with lm-eval as ``a3duck``.
"""

from __future__ import annotations

import logging
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from lm_eval.api.registry import register_model
from lm_eval.models.huggingface import HFLM
from lm_eval.models.utils_hf import get_dtype
from tqdm import tqdm
from transformers import DynamicCache

from a3duck import adapter_folder, models
from a3duck.embedded import EMBEDDED_MODEL_ID
from a3duck.evaluation.prefix_cache import DEFAULT_PREFIX_CACHE_TOKENS, Prefix, plan_prefixes

log = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 8  # questions (packed rows) per forward pass when batch_size is "auto"
_MASKED_ATTENTION = ("sdpa", "eager")  # implementations that accept a custom 4D mask

# One lm-eval loglikelihood request after tokenisation: ((context, continuation), ctx, cont).
Request = tuple[tuple[str, str], list[int], list[int]]


@dataclass
class _Group:
    """All requests sharing one context: the unit packed into one row."""

    context: list[int]
    members: list[int] = field(default_factory=list)  # indices into the request list

    def packed_length(self, requests: list[Request], offset: int = 0) -> int:
        return len(self.context) - offset + sum(len(requests[i][2]) - 1 for i in self.members)


@register_model("a3duck")
class A3DuckLM(HFLM):
    """lm-eval backend: ``hf`` semantics, shared-context multiple-choice scoring.

    model_args as for ``hf``: ``pretrained`` (Hub id, local folder or a loaded model),
    ``peft`` (IA3 adapter folder or Hub id), ``dtype``, ``device``, ``batch_size`` (questions
    per forward pass), plus any other ``HFLM`` argument (``max_length``, ``add_bos_token``, ...).
    String models load through :func:`a3duck.models.load`: the embedded SmolLM2 works offline,
    and an adapter for another base fails with a clear error before any scoring.
    """

    def __init__(self, pretrained=EMBEDDED_MODEL_ID, peft: str | None = None, dtype="auto",
                 device: str | None = None, batch_size=DEFAULT_BATCH_SIZE, tokenizer=None,
                 revision: str | None = None,
                 prefix_cache_tokens: int = DEFAULT_PREFIX_CACHE_TOKENS, **kwargs):
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        torch_dtype = None if dtype in (None, "auto") else get_dtype(dtype)
        if isinstance(pretrained, str):
            model, _ = models.load(pretrained, peft, dtype=torch_dtype, device=device,
                                   revision=revision)
            # The tokenizer the `hf` backend would load: the base's own, not the adapter's copy.
            tokenizer = tokenizer or models.resolve_base_model(pretrained)
        else:
            model = _with_adapter(pretrained, peft, revision) if peft else pretrained
            tokenizer = tokenizer or models.resolve_base_model(model.config.name_or_path)
        super().__init__(pretrained=model, tokenizer=tokenizer, batch_size=batch_size, **kwargs)
        self.peft = peft
        self.prefix_cache_tokens = int(prefix_cache_tokens)
        # task name -> [tokens a plain per-request run reads, tokens this backend read]
        self.token_counts: dict[str, list[int]] = {}
        self._local = threading.local()  # the last call's counts, per thread (the Space)

    # ------------------------------------------------------------------ scoring

    def loglikelihood(self, requests, disable_tqdm: bool = False) -> list[tuple[float, bool]]:
        """As ``hf``; also adds each request's tokens to :attr:`token_counts` under its task."""
        results = super().loglikelihood(requests, disable_tqdm=disable_tqdm)
        counts = getattr(self._local, "counts", None) or [(0, 0)] * len(requests)
        for request, (plain, read) in zip(requests, counts, strict=True):
            tally = self.token_counts.setdefault(request.task_name or "", [0, 0])
            tally[0] += plain
            tally[1] += read
        self._local.counts = None
        return results

    def choice_loglikelihoods(self, context: str, continuations: list[str]) -> list[float]:
        """Log-likelihood of each continuation after ``context`` (one multiple-choice item)."""
        from lm_eval.api.instance import Instance

        requests = [Instance("loglikelihood", {}, (context, c), i)
                    for i, c in enumerate(continuations)]
        return [ll for ll, _ in self.loglikelihood(requests, disable_tqdm=True)]

    # Overrides lm-eval's PRIVATE HFLM._loglikelihood_tokens: lm-eval is pinned to the tested
    # version in pyproject.toml; raise the pin only after tests/test_eval_fast_backend.py passes.
    def _loglikelihood_tokens(self, requests: list[Request], disable_tqdm: bool = False,
                              override_bs: int | None = None) -> list[tuple[float, bool]]:
        """(log-likelihood, is_greedy) per request, in request order; same values as ``hf``."""
        plain = [min(len(c) + len(t) - 1, self.max_length) for _, c, t in requests]
        if override_bs is not None or not self._can_pack():
            # rolling windows (override_bs) have distinct contexts: nothing to share.
            self._local.counts = list(zip(plain, plain, strict=True))
            return super()._loglikelihood_tokens(requests, disable_tqdm, override_bs)
        results: list[tuple[float, bool] | None] = [None] * len(requests)
        read = [0] * len(requests)
        groups, overlong = _group_by_context(requests, self.max_length)
        if overlong:  # hf left-truncates these per request; let it do exactly that
            scored = super()._loglikelihood_tokens([requests[i] for i in overlong], True)
            for i, answer in zip(overlong, scored, strict=True):
                results[i], read[i] = answer, plain[i]
        pbar = tqdm(total=len(requests) - len(overlong), disable=disable_tqdm or self.rank != 0,
                    desc="Running loglikelihood requests (a3duck, shared prefixes)")
        for i, answer, tokens in self._score_groups(groups, requests):
            results[i] = answer
            read[i] += tokens
            if requests[i][0] is not None:
                self.cache_hook.add_partial("loglikelihood", requests[i][0], answer)
            pbar.update(1)
        pbar.close()
        self._local.counts = list(zip(plain, read, strict=True))
        return results  # type: ignore[return-value]

    def _score_groups(self, groups: list[_Group], requests: list[Request]):
        """Yield (request index, answer, tokens read for it) for every member of ``groups``:
        each kept prefix is read once, then the groups under it are scored on its cache."""
        size = self.batch_size if isinstance(self.batch_size, int) else DEFAULT_BATCH_SIZE
        root = plan_prefixes(groups, self.prefix_cache_tokens)
        path: list[tuple[Prefix, DynamicCache | None]] = []
        pending = 0  # prefix tokens read and not yet charged to a request
        for node, parent in root.walk():
            while path and path[-1][0] is not parent:
                path.pop()  # that prefix's subtree is done: free its cache
            cache = self._extend(path[-1][1] if path else None, parent, node)
            path.append((node, cache))
            pending += node.length - (parent.length if parent else 0)
            node.groups.sort(key=lambda g: -g.packed_length(requests, node.length))
            for start in range(0, len(node.groups), size):
                for i, answer, tokens in self._score_batch(
                        node.groups[start:start + size], requests, node.length, cache):
                    yield i, answer, tokens + pending
                    pending = 0

    def _extend(self, cache, parent: Prefix | None, node: Prefix):
        """The key/value cache of ``node``'s prefix, from its parent's (which stays intact)."""
        if node.length == 0:
            return None
        done = parent.length if parent else 0
        cache = _expanded(cache, 1)
        ids = torch.tensor([node.tokens[done:]], dtype=torch.long, device=self.device)
        with self._forward_context():
            _causal_lm(self.model).get_decoder()(
                input_ids=ids, position_ids=torch.arange(done, node.length, device=self.device
                                                         ).unsqueeze(0),
                past_key_values=cache, use_cache=True)
        return cache

    @contextmanager
    def _forward_context(self):
        with torch.no_grad(), torch.autocast(device_type=self.device.type,
                                             dtype=self.mixed_precision_dtype,
                                             enabled=self.mixed_precision_dtype is not None):
            yield

    def _can_pack(self) -> bool:
        lm = _causal_lm(self.model)
        config = lm.config
        return (self.backend == "causal"
                and config._attn_implementation in _MASKED_ATTENTION
                and getattr(config, "final_logit_softcapping", None) is None
                and getattr(config, "logit_scale", None) is None
                and lm.get_output_embeddings() is not None)

    def _score_batch(self, batch: list[_Group], requests: list[Request], offset: int, cache):
        """Yield (request index, (loglik, is_greedy), tokens read) for every member of
        ``batch``; the contexts' first ``offset`` tokens are in ``cache``."""
        lm = _causal_lm(self.model)
        packed = _pack(batch, requests, self.device, offset)
        mask = packed.mask if lm.config._attn_implementation == "sdpa" else _additive(
            packed.mask, lm.dtype)
        with self._forward_context():
            hidden = lm.get_decoder()(
                input_ids=packed.input_ids, attention_mask=mask,
                position_ids=packed.position_ids, use_cache=cache is not None,
                past_key_values=_expanded(cache, len(batch)) if cache is not None else None,
            ).last_hidden_state
            logits = lm.get_output_embeddings()(hidden[packed.rows, packed.cols])
        logprobs = F.log_softmax(logits, dim=-1, dtype=self.softmax_dtype)
        greedy = logprobs.argmax(dim=-1)
        picked = logprobs.gather(1, packed.targets.unsqueeze(1)).squeeze(1)
        offset_n, first = 0, set()
        for index, group in packed.order:
            n = len(requests[index][2])
            span = slice(offset_n, offset_n + n)
            offset_n += n
            tokens = n - 1 + (0 if id(group) in first else len(group.context) - offset)
            first.add(id(group))
            yield index, (float(picked[span].sum()),
                          bool((greedy[span] == packed.targets[span]).all())), tokens


def _expanded(cache, rows: int):
    """A new cache holding ``cache``'s keys and values for ``rows`` rows (``cache`` itself is
    left as it is: the new layers concatenate copies); an empty cache when ``cache`` is None."""
    if cache is None:
        return DynamicCache()
    return DynamicCache(ddp_cache_data=[(k.expand(rows, -1, -1, -1), v.expand(rows, -1, -1, -1))
                                        for k, v, *_ in cache])


@dataclass
class _Packed:
    input_ids: torch.Tensor     # [B, T]
    position_ids: torch.Tensor  # [B, T]
    mask: torch.Tensor          # [B, 1, T, offset + T] bool, True = may attend
    rows: torch.Tensor          # [N] batch row of each scored position
    cols: torch.Tensor          # [N] sequence position of each scored position
    targets: torch.Tensor       # [N] the continuation token each scored position predicts
    order: list[tuple[int, _Group]]  # request indices (and group), in position order


def _group_by_context(requests: list[Request], max_length: int):
    """Groups of requests with identical context tokens, and the indices ``hf`` would truncate."""
    groups: dict[tuple[int, ...], _Group] = {}
    overlong: list[int] = []
    for i, (_, context, continuation) in enumerate(requests):
        if not context or not continuation:
            raise ValueError("a loglikelihood request needs a non-empty context and continuation")
        if len(context) + len(continuation) > max_length + 1:
            overlong.append(i)
            continue
        groups.setdefault(tuple(context), _Group(list(context))).members.append(i)
    return list(groups.values()), overlong


def _pack(batch: list[_Group], requests: list[Request], device, offset: int = 0) -> _Packed:
    """Lay out each group as one row: its context after the first ``offset`` tokens (those are
    in the prefix cache), then every continuation minus its last token."""
    ids, pos, seg = [], [], []
    rows, cols, targets, order = [], [], [], []
    for b, group in enumerate(batch):
        n_ctx = len(group.context)
        row_ids, row_pos = group.context[offset:], list(range(offset, n_ctx))
        row_seg = [0] * len(row_ids)
        for s, index in enumerate(group.members, start=1):
            cont = requests[index][2]
            start = len(row_ids)
            row_ids = row_ids + cont[:-1]
            row_pos += range(n_ctx, n_ctx + len(cont) - 1)
            row_seg += [s] * (len(cont) - 1)
            # token k of the continuation is predicted at the previous token's position
            cols += [n_ctx - offset - 1] + list(range(start, start + len(cont) - 1))
            rows += [b] * len(cont)
            targets += cont
            order.append((index, group))
        ids.append(row_ids), pos.append(row_pos), seg.append(row_seg)
    width = max(len(r) for r in ids)

    def pad(lists, value):
        return torch.tensor([r + [value] * (width - len(r)) for r in lists], dtype=torch.long,
                            device=device)

    def long(values):
        return torch.tensor(values, dtype=torch.long, device=device)

    segments = pad(seg, -1)  # padding: its own segment, invisible to real tokens
    causal = torch.ones(width, width, dtype=torch.bool, device=device).tril()
    visible = (segments[:, None, :] == 0) | (segments[:, None, :] == segments[:, :, None])
    mask = (causal & visible).unsqueeze(1)
    if offset:  # every token sees the whole cached prefix
        mask = torch.cat([mask.new_ones(len(batch), 1, width, offset), mask], dim=-1)
    return _Packed(pad(ids, 0), pad(pos, 0), mask, long(rows), long(cols), long(targets), order)


def _additive(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Eager attention wants an additive float mask: 0 where allowed, a large negative else."""
    zero = torch.zeros((), dtype=dtype, device=mask.device)
    return torch.where(mask, zero, torch.finfo(dtype).min)


def _causal_lm(model):
    """The transformers CausalLM under a PEFT wrapper (IA3 layers are injected in place)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def _with_adapter(model, adapter: str, revision: str | None):
    """Attach an adapter to an already loaded base model, after checking that it fits."""
    from peft import PeftModel

    adapter_dir = adapter_folder.resolve(adapter, revision)
    models.check_adapter_matches(model, adapter_dir, model.config.name_or_path)
    return PeftModel.from_pretrained(model, str(adapter_dir), is_trainable=False).eval()
