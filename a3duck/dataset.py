"""The training dataset: sources read and validated (:mod:`a3duck.data`), mixed
(:mod:`a3duck.sources`), rendered with the resolved template and tokenised into ``input_ids`` +
``completion_mask`` columns (what TRL's SFTTrainer takes, packed or not).

The loss mask comes from token positions: a row is a list of (text, is_assistant) pieces
(``Template.pieces``), each piece is tokenised on its own and the assistant pieces' tokens are
the labelled ones. Under ``chat`` an assistant piece is the turn's content, its end-of-turn
token and whatever the template writes after it (a newline): the tokens after the last
end-of-turn token are not labelled. Alpaca and verbatim rows get the tokenizer's EOS after each
answer when ``add_eos_token`` is set.
"""

from __future__ import annotations

from dataclasses import dataclass

from a3duck.data import (
    DataError,
    DataReport,
    Example,
    detect_schema,
    is_conversational,
    load_rows,
    normalise,
)
from a3duck.prompts import CHAT_NAME, get_template, resolve_template_name
from a3duck.sources import map_columns, mixture_order, parse_sources

# Tokens that end an assistant turn in common chat templates (besides the tokenizer's EOS).
END_OF_TURN_TOKENS = ("<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>", "<|endoftext|>")


@dataclass
class Encoded:
    ids: list[int]
    mask: list[int]
    turn_ends: list[int]  # token index just after each labelled turn (safe cut points)


def end_of_turn_ids(tokenizer) -> set[int]:
    ids = {tokenizer.eos_token_id} - {None}
    vocab = tokenizer.get_vocab()
    return ids | {vocab[t] for t in END_OF_TURN_TOKENS if t in vocab}


def encode(ex: Example, tokenizer, add_eos: bool, template=None) -> Encoded:
    """Token ids, loss mask and turn ends of one example (see the module docstring)."""
    chat = ex.messages is not None and template is not None and template.name == CHAT_NAME
    pieces = (template.pieces(ex.messages) if ex.messages is not None
              else [(ex.prompt, False), (ex.completion, True)])
    eot = end_of_turn_ids(tokenizer) if chat else set()
    ids: list[int] = []
    mask: list[int] = []
    ends: list[int] = []
    for n, (text, answer) in enumerate(pieces):
        piece = tokenizer(text, add_special_tokens=n == 0 and not chat)["input_ids"]
        labelled = len(piece)
        if answer and chat:
            last = max((i for i, t in enumerate(piece) if t in eot), default=len(piece) - 1)
            labelled = last + 1
        elif answer and add_eos and tokenizer.eos_token_id is not None:
            piece = piece + [tokenizer.eos_token_id]
            labelled = len(piece)
        mask += [int(answer)] * labelled + [0] * (len(piece) - labelled)
        ids += piece
        if answer:
            ends.append(len(ids) - len(piece) + labelled)
    return Encoded(ids, mask, ends)


def tokenize_example(ex: Example, tokenizer, add_eos: bool,
                     template=None) -> tuple[list[int], list[int]]:
    """(input_ids, completion_mask): mask 1 marks tokens the loss sees."""
    enc = encode(ex, tokenizer, add_eos, template)
    return enc.ids, enc.mask


def nothing_fits_advice(too_long: str) -> str:
    """What to change when every row was over the cutoff, naming only settings not in effect."""
    if too_long == "truncate":  # already truncating: what was dropped had no room for an answer
        return ("their prompts leave no room for an answer; raise --cutoff-len, or shorten "
                "the prompts")
    return "raise --cutoff-len, pass --too-long truncate, or shorten the prompts"


def tokenize_examples(examples: list[Example], tokenizer, *, cutoff_len: int, add_eos: bool,
                      too_long: str, report: DataReport, template=None) -> dict[str, list]:
    """Columns ``input_ids`` and ``completion_mask``, applying the cutoff policy.

    A conversation over the cutoff is cut after its last assistant turn that fits (when one
    does); otherwise the row is truncated mid-turn (``truncate``) or dropped (``drop``). Rows
    whose prompt alone fills the cutoff leave nothing to learn from and are dropped."""
    columns: dict[str, list] = {"input_ids": [], "completion_mask": []}
    for ex in examples:
        fitted = fit(encode(ex, tokenizer, add_eos, template), cutoff_len, too_long, report)
        if fitted is not None:
            columns["input_ids"].append(fitted[0])
            columns["completion_mask"].append(fitted[1])
    report.kept = len(columns["input_ids"])
    if not report.kept:
        raise DataError(
            f"{report.source}: no trainable rows left: {report.too_long} of {len(examples)} "
            f"rows are longer than cutoff_len={cutoff_len} tokens and were dropped: "
            f"{nothing_fits_advice(too_long)}"
        )
    return columns


def fit(enc: Encoded, cutoff_len: int, too_long: str,
        report: DataReport) -> tuple[list[int], list[int]] | None:
    """(ids, mask) within the cutoff (see tokenize_examples), or None when dropped."""
    ids, mask = enc.ids, enc.mask
    if len(ids) <= cutoff_len:
        return ids, mask
    report.too_long += 1
    fits = [end for end in enc.turn_ends if end <= cutoff_len]
    if too_long == "drop" or not any(mask[:cutoff_len]):
        report.dropped_too_long += 1
        return None
    cut = fits[-1] if fits else cutoff_len
    if fits:
        report.cut_at_turn += 1
    else:
        report.truncated += 1
    return ids[:cut], mask[:cut]


def prepare_stream(config, tokenizer):
    """``config.data`` as a streaming ``datasets.IterableDataset`` (:mod:`a3duck.streaming`).

    Returns (IterableDataset, DataReport filled while the stream is read, template name)."""
    import datasets

    from a3duck import streaming

    streams = streaming.open_streams(config)  # fails here on a missing file or unknown schema
    name = resolve_template_name(config.prompt_template, streaming.conversational(streams),
                                 tokenizer)
    template = get_template(name, tokenizer)
    report = DataReport(source=", ".join(s.source.label for s in streams),
                        public=", ".join(s.source.public_label for s in streams))

    def rows():
        fresh = streaming.open_streams(config)  # every pass (and every resume) starts over
        report.sources = [s.report for s in fresh] if len(fresh) > 1 else []
        report.total_rows, report.bad_rows, report.kept = 0, [], 0
        for ex in streaming.examples(fresh, name, config.skip_bad_rows, config.seed, report):
            fitted = fit(encode(ex, tokenizer, config.add_eos_token, template), config.cutoff_len,
                         config.too_long, report)
            if fitted is not None:
                report.kept += 1
                yield {"input_ids": fitted[0], "completion_mask": fitted[1]}

    features = datasets.Features({"input_ids": datasets.Sequence(datasets.Value("int32")),
                                  "completion_mask": datasets.Sequence(datasets.Value("int8"))})
    return datasets.IterableDataset.from_generator(rows, features=features), report, name


def read_sources(config):
    """[(Source, rows, schema, DataReport)] of ``config.data``: read and schema-checked."""
    read = []
    for source in parse_sources(config.data, config.data_split):
        rows = [map_columns(r, source.columns) for r in load_rows(source.path, source.split)]
        if not rows:
            raise DataError(f"{source.label}: the dataset is empty")
        read.append((source, rows, detect_schema(rows, source.label),
                     DataReport(source.label, public=source.public_label)))
    return read


def resolve_template(config, tokenizer, read) -> str:
    """The recipe's ``prompt_template`` with ``auto`` resolved for this data and tokenizer."""
    conversational = any(is_conversational(schema) for _, _, schema, _ in read)
    return resolve_template_name(config.prompt_template, conversational, tokenizer)


def prepare_dataset(config, tokenizer):
    """Load, validate, mix and tokenise ``config.data``.

    Returns (datasets.Dataset, DataReport, resolved template name)."""
    import datasets

    read = read_sources(config)
    name = resolve_template(config, tokenizer, read)
    template = get_template(name, tokenizer)
    per_source = [normalise(rows, src.label, name, config.skip_bad_rows, rep, schema)
                  for src, rows, schema, rep in read]
    sources = [src for src, _, _, _ in read]
    order = mixture_order([len(ex) for ex in per_source], sources, config.seed)
    examples = [per_source[s][r] for s, r in order]
    total = DataReport(source=", ".join(s.label for s in sources),
                       public=", ".join(s.public_label for s in sources))
    total.total_rows = sum(rep.total_rows for *_, rep in read)
    for *_, rep in read:
        total.bad_rows += rep.bad_rows
        total.duplicates += rep.duplicates
    if not examples:
        raise DataError(f"{total.source}: no valid rows")
    columns = tokenize_examples(examples, tokenizer, cutoff_len=config.cutoff_len,
                                add_eos=config.add_eos_token, too_long=config.too_long,
                                report=total, template=template)
    if len(sources) > 1:
        for i, (*_, rep) in enumerate(read):
            rep.kept = len(per_source[i])
            rep.sampled = sum(1 for s, _ in order if s == i)
            total.sources.append(rep)
    return datasets.Dataset.from_dict(columns), total, name
