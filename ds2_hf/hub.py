"""Compatibility alias of :mod:`ds2_hf.publish` (the publishing stage was split into a package).

New code imports from :mod:`ds2_hf` or :mod:`ds2_hf.publish`.
"""

from .publish import (  # noqa: F401
    CARD_FILE, DATA_DIR, FIGURES_DIR, HTML_FILE, REPORT_FILE, PublishConfig, PushError, PushResult, build_card,
    load_summary, push_folder, push_subset, save_subset,
)
