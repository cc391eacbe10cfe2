"""Publish a curated subset as a Hugging Face dataset: parquet shards, a dataset card, figures, a report and a
manifest.

:func:`save_subset` writes a folder in the Hub's repository layout, as a whole (staged beside it and renamed into
place)::

    my-subset/
    ├── README.md                         dataset card: YAML metadata + how the subset was selected
    ├── data/train-00000-of-00001.parquet the rows (``embedding`` dropped unless ``keep_embedding=True``)
    ├── figures/*.png                     transition matrix, rating distributions, long-tail, composition
    ├── ds2_report.json                   the typed report (ds2_hf.report.Report) and every number the card shows
    └── ds2_manifest.json                 row count and the hash of every file, checked before reading or pushing

``datasets.load_dataset("my-subset")`` reads it back with the same features, and
``huggingface_hub.DatasetCard.load("my-subset/README.md")`` parses its metadata. :func:`push_folder` uploads such
a folder to the Hub in one commit; :func:`push_subset` does both. The files are byte-for-byte reproducible, so
re-pushing the same subset makes no new commit. :func:`write_report_html` renders the same content as one page.

=================  =============================================================================
module             owns
=================  =============================================================================
``config``         :class:`PublishConfig` and the names of the folder's files
``summary``        :class:`~ds2_hf.publish.summary.Summary`: every number the card shows
``figures``        which figures exist (one registry) and how each is drawn
``card``           the card's template variables and YAML metadata
``manifest``       the folder's manifest: row count and file hashes, and its check
``save``           :func:`save_subset`, :func:`build_card`
``push``           :func:`push_folder`, :func:`push_subset`
``html``           :func:`write_report_html`
=================  =============================================================================

Examples
--------
>>> import datasets, ds2_hf
>>> subset = datasets.Dataset.from_dict({"text": ["a", "b"], "rating": [5, 4], "curated_rating": [5, 5]})
>>> folder = ds2_hf.save_subset(subset, "/tmp/my-subset", source="org/pool", license="apache-2.0",
...                             overwrite=True)
>>> datasets.load_dataset(str(folder), split="train").num_rows
2
"""

from __future__ import annotations

from .config import CARD_FILE, DATA_DIR, FIGURES_DIR, HTML_FILE, MANIFEST_FILE, REPORT_FILE, PublishConfig
from .html import render_report_html, write_report_html
from .manifest import ManifestError, verify_folder
from .push import PushError, PushResult, push_folder, push_subset
from .save import build_card, load_summary, read_folder, save_subset

__all__ = [
    "PublishConfig", "PushResult", "PushError", "ManifestError", "build_card", "save_subset", "push_subset",
    "push_folder", "load_summary", "read_folder", "verify_folder", "render_report_html", "write_report_html",
    "CARD_FILE", "DATA_DIR", "FIGURES_DIR", "HTML_FILE", "MANIFEST_FILE", "REPORT_FILE",
]
