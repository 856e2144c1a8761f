"""Which token prefixes the ``a3duck`` backend reads once and reuses across documents.

Requests that share a context are already scored in one packed row (see ``fast_backend``). Across
documents the leaderboard repeats long prefixes too: MMLU's five dev-split shots before every
question of a subject, TruthfulQA's fixed six-question preamble, the BOS and task description
before every document. This module orders the contexts and decides which shared prefixes to
compute once:

1. the contexts are sorted, so contexts sharing a prefix are neighbours, and a radix tree over
   them is built from the longest common prefixes of neighbours (one pass, a stack);
2. the tree is collapsed to the prefixes worth caching: a prefix is kept when the tokens it saves
   (its own tokens times the other documents below it) reach ``MIN_SAVED_TOKENS`` and the prefixes
   held at once (the kept ancestors on the path, whose key/value caches stay in memory while
   their descendants are scored) stay within ``budget`` tokens.

Every context keeps at least one token outside its prefix: the logits of a context's last token
predict its continuations' first token, so that token goes through the scoring pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

MIN_SAVED_TOKENS = 64  # a prefix reused for fewer saved tokens is not worth a separate pass
DEFAULT_PREFIX_CACHE_TOKENS = 8192  # prefix tokens whose key/value cache is held at once


class HasContext(Protocol):
    context: list[int]


@dataclass
class Prefix:
    """A prefix read once: ``source[:length]``; ``groups`` are scored right after it, then each
    child prefix extends it. The root (length 0) holds the documents that share nothing."""

    length: int
    source: list[int]
    groups: list = field(default_factory=list)
    children: list[Prefix] = field(default_factory=list)

    @property
    def tokens(self) -> list[int]:
        return self.source[:self.length]

    def walk(self):
        """(prefix, parent) pairs in the order they are computed (depth first, parent first)."""
        stack: list[tuple[Prefix, Prefix | None]] = [(self, None)]
        while stack:
            node, parent = stack.pop()
            yield node, parent
            stack.extend((c, node) for c in reversed(node.children))


def _lcp(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


@dataclass
class _Node:
    length: int
    source: list[int]
    leaves: list = field(default_factory=list)
    children: list[_Node] = field(default_factory=list)
    below: int = 0  # leaves in the subtree


def radix_tree(groups: list[HasContext]) -> _Node:
    """A radix tree over the groups' contexts (each group a leaf, at most len(context) - 1 deep)."""
    root = _Node(0, [])
    stack, prev = [root], None
    for g in sorted(groups, key=lambda g: g.context):
        shared = 0
        if prev is not None:
            shared = min(_lcp(prev.context, g.context), len(prev.context) - 1, len(g.context) - 1)
        last = None
        while stack[-1].length > shared:
            last = stack.pop()
        top = stack[-1]
        if top.length < shared:  # split: a new inner node adopts prev's branch
            node = _Node(shared, g.context)
            if last is not None:  # prev's branch is top's newest child (sorted order)
                node.children.append(top.children.pop())
            else:
                node.leaves.append(top.leaves.pop())
            top.children.append(node)
            stack.append(node)
        stack[-1].leaves.append(g)
        prev = g
    _count(root)
    return root


def _count(root: _Node) -> None:
    order, stack = [], [root]
    while stack:
        node = stack.pop()
        order.append(node)
        stack.extend(node.children)
    for node in reversed(order):  # children before parents
        node.below = len(node.leaves) + sum(c.below for c in node.children)


def plan_prefixes(groups: list[HasContext], budget: int = DEFAULT_PREFIX_CACHE_TOKENS,
                  min_saved: int = MIN_SAVED_TOKENS) -> Prefix:
    """The prefixes to read once, as a tree of :class:`Prefix` holding every group exactly once."""
    tree = radix_tree(groups)
    root = Prefix(0, [])
    stack: list[tuple[_Node, Prefix, int]] = [(tree, root, 0)]
    while stack:
        node, anchor, held = stack.pop()
        saved = (node.length - anchor.length) * (node.below - 1)
        if node is not tree and saved >= min_saved and held + node.length <= budget:
            kept = Prefix(node.length, node.source)
            anchor.children.append(kept)
            anchor, held = kept, held + node.length
        anchor.groups.extend(node.leaves)
        stack.extend((c, anchor, held) for c in reversed(node.children))
    return root
