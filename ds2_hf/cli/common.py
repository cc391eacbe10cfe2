"""What the commands share: their inputs and outputs (read and checked before any work, ``--overwrite-output``,
``--report FILE``) and their options generated from the configuration dataclasses.

:func:`add_config_arguments` gives a command one option per field of a config (``--num-classes`` for
``CurationConfig.num_classes``; with a prefix, ``--embed-model`` for ``EmbeddingConfig.model`` in ``ds2 run``),
its help and default from the config's documentation, its choices from the registry that holds them
(:data:`ds2_hf._argparse.REGISTRIES`); :func:`config_values` reads back what the user changed, for the config's
constructor. A flag whose name is not the field's is declared in :data:`ALIASES` or :data:`NEGATIONS`, nowhere
else.
"""

from __future__ import annotations

import argparse

OVERWRITE_OUTPUT = "--overwrite-output"


def add_stage_arguments(p: argparse.ArgumentParser, *, report: str) -> None:
    """What every stage command (``rate | embed | curate | select``) takes: ``INPUT OUTPUT --split`` and the output
    options (:func:`add_output_options`; ``report`` says what its report holds)."""
    p.add_argument("input", help="Hub id, data file (.parquet/.jsonl/.json/.csv), data folder or save_to_disk folder")
    p.add_argument("output", help="output .parquet/.jsonl/.csv file, or a folder (save_to_disk)")
    p.add_argument("--split", default="train", help="split to read when INPUT has several (default: train)")
    add_output_options(p, report=report)


def add_output_options(p: argparse.ArgumentParser, *, report: str) -> None:
    """``--report FILE`` (this stage's section of the typed report) and ``--overwrite-output``."""
    p.add_argument("--report", metavar="FILE",
                   help=f"also write the report as JSON to FILE ({report}); `ds2 report` and `ds2 push` read it, "
                   "several such files combine")
    p.add_argument("--overwrite-output", action="store_true",
                   help="replace OUTPUT (and the --report file) when they exist (default: refuse); the new file is "
                   "written beside the old one and renamed over it, so an interruption loses neither")


def check_outputs(args: argparse.Namespace, *paths) -> None:
    """Before any work: refuse existing outputs without ``--overwrite-output`` and outputs that cannot be written."""
    from ..atomic import check_writable

    for path in (args.output, getattr(args, "report", None), *paths):
        if path:
            check_writable(path, overwrite=args.overwrite_output, flag=OVERWRITE_OUTPUT)


def stage_report(args: argparse.Namespace, **sections):
    """The report of one stage command: its input as the source, the section(s) given, its command line."""
    from ..report import CommandInfo, Report, SourceInfo

    return Report(source=SourceInfo.of(args.input), command=CommandInfo.of(args.argv), **sections)


def write_report(args: argparse.Namespace, report) -> None:
    if args.report:
        report.write(args.report, overwrite=args.overwrite_output)


def load_input(path, *, split: str, what: str):
    """The command's input as a non-empty :class:`datasets.Dataset` (``what``: the command, for the message).

    Raises
    ------
    ds2_hf.validation.InputError
        The path is missing, unreadable or empty (:func:`ds2_hf.io.load`), or the dataset has no rows.
    """
    from .. import io
    from ..validation import check_dataset

    dataset = io.load(path, split=split)
    check_dataset(dataset, what=what)
    return dataset


#: Flags whose name is not the field's (``--field-name``, or ``--prefix-field-name``): (config class, field) ->
#: further option strings. The one table of aliases; every other flag of a config field is generated.
ALIASES: dict[tuple[str, str], tuple[str, ...]] = {
    ("SelectionConfig", "k"): ("-k",),
    ("RayOptions", "engine_kwargs"): ("--engine-kwargs",),
}

#: Boolean fields with a flag that turns them off, besides the generated ``--no-field-name``.
NEGATIONS: dict[tuple[str, str], str] = {
    ("SelectionConfig", "deduplicate"): "--keep-duplicates",
    ("RatingConfig", "do_sample"): "--greedy",
}


def add_config_arguments(p: argparse.ArgumentParser, cls: type, *, title: str, prefix: str = "",
                         include=None, exclude=(), notes=None) -> None:
    """One option per field of the config dataclass ``cls`` (:func:`ds2_hf._argparse.add_dataclass_arguments`),
    in an argument group; :func:`config_values` reads back what the user set."""
    from .._argparse import add_dataclass_arguments

    name = cls.__name__
    options = add_dataclass_arguments(
        p.add_argument_group(title), cls, prefix=prefix, include=include, exclude=exclude, notes=notes,
        aliases={f: a for (c, f), a in ALIASES.items() if c == name},
        negations={f: a for (c, f), a in NEGATIONS.items() if c == name},
    )
    p.set_defaults(config_options={**(p.get_default("config_options") or {}), (name, prefix): options})


def add_formatter_arguments(p: argparse.ArgumentParser, *, purpose: str) -> None:
    """``--format``, ``--template`` and ``--style`` of :class:`ds2_hf.formats.Formatter`: how rows become text."""
    from ..formats import Formatter

    add_config_arguments(p, Formatter, title=f"rendering rows{purpose} (ds2_hf.formats.Formatter)",
                         include=("format", "template", "style"))


def formatter_from_args(args: argparse.Namespace):
    """The :class:`~ds2_hf.formats.Formatter` the options describe, or None when none was given."""
    from ..formats import Formatter

    values = config_values(args, Formatter)
    return Formatter(**values) if values else None


def config_values(args: argparse.Namespace, cls: type, *, prefix: str = "") -> dict:
    """Field name -> value of every option of ``cls`` (added with ``prefix``) that the user changed."""
    from .._argparse import changed_values

    return changed_values(args, args.config_options[(cls.__name__, prefix)])


def column_or_none(value: str | None) -> str | None:
    """A column option where the word ``none`` means no column (``--composition-column none``)."""
    return None if value is not None and value.lower() == "none" else value


#: The :class:`~ds2_hf.PublishConfig` fields that ``ds2 push`` and ``ds2 report`` expose for a plain dataset.
CARD_OPTIONS = ("license", "language", "pretty_name", "keep_embedding", "composition_column", "num_examples")


def add_plain_dataset_arguments(p) -> None:
    """What describes a plain dataset (not a subset folder) to ``ds2 push`` and ``ds2 report``."""
    p.add_argument("--split", default="train", help="split to read when the dataset has several (default: train)")
    p.add_argument("--report", action="append", default=[], metavar="JSON",
                   help="report JSON describing the dataset (repeatable; later files win)")
    p.add_argument("--pool", metavar="PATH", help="the full curated pool, for pool-vs-subset figures")


def card_options(args: argparse.Namespace) -> dict:
    """The :class:`~ds2_hf.PublishConfig` fields the user set (``--composition-column none``: no composition)."""
    from ..publish import PublishConfig

    values = config_values(args, PublishConfig)
    if "composition_column" in values:
        values["composition_column"] = column_or_none(values["composition_column"])
    return values
