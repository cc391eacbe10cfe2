"""Upload a subset folder to a Hub dataset repository in one commit.

:func:`push_folder` checks the folder against its manifest, then commits every file at once with
:meth:`huggingface_hub.HfApi.create_commit`; files already on the Hub byte for byte are skipped, so re-pushing
the same folder makes no commit. :func:`push_subset` saves a subset (:func:`ds2_hf.save_subset`) and pushes it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..report import Report
from .config import CARD_FILE, DATA_DIR, FIGURES_DIR, PublishConfig
from .manifest import verify_folder
from .save import read_folder, save_subset

logger = logging.getLogger(__name__)

#: Remote paths :func:`push_folder` prunes when a re-push no longer contains them (stale shards, old figures).
PRUNE_PATTERNS = (f"{DATA_DIR}/*", f"{FIGURES_DIR}/*")


class PushError(RuntimeError):
    """Publishing to the Hub failed; the message says why and how to fix it (it never contains the token)."""


@dataclass(frozen=True)
class PushResult:
    """What :func:`push_folder` did.

    Attributes
    ----------
    repo_id : str
        Full ``namespace/name`` of the dataset repository.
    url : str
        Web address of the repository.
    revision : str
        Branch the commit went to.
    commit_oid : str
        The commit now at the head of ``revision`` (the previous head when nothing changed).
    commit_url : str
        Web address of that commit.
    changed : bool
        False when every file was already on the Hub byte for byte, so no commit was made.
    files : tuple of str
        Paths of the folder that were part of the upload.
    """

    repo_id: str
    url: str
    revision: str
    commit_oid: str
    commit_url: str
    changed: bool
    files: tuple[str, ...]


def resolve_token(token: str | None) -> str:
    from huggingface_hub import get_token

    token = token or get_token()
    if not token:
        raise PushError(
            "no Hugging Face token found. Log in with `hf auth login`, set the HF_TOKEN environment variable, "
            "or pass token=... (a token with write access to the target namespace)."
        )
    return token


def validate_repo_id(repo_id: str) -> None:
    from huggingface_hub.utils import HFValidationError
    from huggingface_hub.utils import validate_repo_id as hub_validate

    if not isinstance(repo_id, str) or not repo_id:
        raise ValueError(f"repo_id must be a non-empty string like 'user/name' or 'org/name', got {repo_id!r}")
    try:
        hub_validate(repo_id)
    except HFValidationError as err:
        raise ValueError(
            f"invalid repo id {repo_id!r}: use 'name' or 'namespace/name' with letters, digits, '-', '_' and '.' "
            f"(at most 96 characters, no '--' or '..'). Details: {err}"
        ) from None


def _default_commit_message(folder: Path) -> tuple[str, str]:
    try:
        saved = read_folder(folder)
    except FileNotFoundError:
        return "Upload dataset with ds2-hf", ""
    report: Report = saved.report
    n = saved.summary.num_rows
    selection, curation, rating = report.selection, report.curation, report.rating
    pool = (selection.n_pool if selection else None) or (curation.n if curation else None)
    message = f"Add DS2 subset: {n:,} rows" + (f" of {int(pool):,}" if pool else "")
    details = [f"{k} {v}" for k, v in (("strategy", selection.strategy if selection else None),
                                       ("curation", curation.method if curation else None),
                                       ("rater", rating.model if rating else None)) if v]
    if details:
        message += f" ({', '.join(details)})"
    description = "Reproduce with:\n\n    " + "\n    ".join(report.command.lines) + "\n" if report.command else ""
    return message, description


def _http_error(err, repo_id: str, revision: str, endpoint: str) -> PushError:
    status = getattr(getattr(err, "response", None), "status_code", None)
    server = getattr(err, "server_message", None) or ""
    where = f"{repo_id!r} (revision {revision!r}) on {endpoint}"
    hints = {
        401: "the token was rejected (invalid or expired). Create a write token at "
             "https://huggingface.co/settings/tokens and log in again with `hf auth login` or set HF_TOKEN.",
        403: "the token may not write there. Use a token with write access to the namespace (for an "
             "organisation, be a member with write rights) or publish under your own namespace.",
        404: "the repository or the branch was not found. Check the repo id and revision; the token must be "
             "able to see the repository.",
        409: "the repository changed during the upload or the name conflicts with another repository. "
             "Retry the push.",
    }
    if status in hints:
        hint = hints[status]
    elif status is not None and status >= 500:
        hint = "the Hub had a server error; nothing was committed. Retry later."
    else:
        hint = "see the server message."
    detail = f" Server said: {server}" if server else ""
    return PushError(f"push to {where} failed with HTTP {status}: {hint}{detail}")


def push_folder(
    folder: str | os.PathLike,
    repo_id: str,
    *,
    private: bool | None = None,
    revision: str | None = None,
    token: str | None = None,
    endpoint: str | None = None,
    commit_message: str | None = None,
    commit_description: str | None = None,
    prune: bool = True,
) -> PushResult:
    """Upload a folder written by :func:`save_subset` to a Hub dataset repository in one commit.

    Creates the repository (and the branch) when needed, then commits every file of the folder at once with
    :meth:`huggingface_hub.HfApi.create_commit`, the single-commit primitive behind ``upload_folder``. Files
    already on the Hub byte for byte are skipped, so re-pushing the same folder makes no commit.

    Parameters
    ----------
    folder : str or path
        A folder with ``README.md`` and ``data/`` (from :func:`save_subset` or ``ds2 run``).
    repo_id : str
        ``"name"`` (your namespace), ``"user/name"`` or ``"org/name"``.
    private : bool, optional
        Visibility of a newly created repository (an existing one keeps its visibility). Default: the
        namespace's default (public unless the organisation says otherwise).
    revision : str, optional
        Branch to commit to; created from ``main`` if missing. Default ``"main"``.
    token : str, optional
        Hub token. Default: ``HF_TOKEN``, else the cached login (``hf auth login``). Never printed or stored.
    endpoint : str, optional
        Hub address. Default: ``HF_ENDPOINT`` if set, else https://huggingface.co.
    commit_message, commit_description : str, optional
        Default: a summary of the subset ("Add DS2 subset: 1,000 rows of 300,000 (strategy ds2, ...)") and the
        command that reproduces it.
    prune : bool, default True
        Delete files under ``data/`` and ``figures/`` of the repository that the folder no longer has (stale
        shards of a previous push), in the same commit.

    Returns
    -------
    PushResult

    Raises
    ------
    ValueError
        Invalid repo id, or ``folder`` is not a dataset folder.
    ds2_hf.publish.manifest.ManifestError
        ``folder`` does not match its manifest (an interrupted or mixed save).
    PushError
        No token, or the Hub refused (401/403/404/409/5xx): the message names the cause and the fix.
    """
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi
    from huggingface_hub import constants as hf_constants
    from huggingface_hub.errors import HfHubHTTPError

    folder = Path(folder)
    validate_repo_id(repo_id)
    if not (folder / CARD_FILE).is_file() or not (folder / DATA_DIR).is_dir():
        raise ValueError(
            f"{str(folder)!r} is not a dataset folder in Hub layout (README.md and data/ are required); "
            f"write one with ds2_hf.save_subset(subset, folder) or `ds2 run ... --output FOLDER`"
        )
    verify_folder(folder)  # an interrupted or mixed save is refused before anything is uploaded
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                   if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts))
    revision = revision or hf_constants.DEFAULT_REVISION
    endpoint = (endpoint or os.environ.get("HF_ENDPOINT") or hf_constants.ENDPOINT).rstrip("/")
    token = resolve_token(token)
    default_message, default_description = _default_commit_message(folder)
    api = HfApi(endpoint=endpoint, token=token)
    full_id = repo_id
    try:
        repo_url = api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        full_id = repo_url.repo_id or repo_id
        if revision != hf_constants.DEFAULT_REVISION:
            api.create_branch(full_id, branch=revision, repo_type="dataset", exist_ok=True)
        head_before = api.dataset_info(full_id, revision=revision).sha
        operations: list = [CommitOperationAdd(path_in_repo=f, path_or_fileobj=str(folder / f)) for f in files]
        if prune:
            from fnmatch import fnmatch

            remote = api.list_repo_files(full_id, repo_type="dataset", revision=revision)
            operations += [CommitOperationDelete(path_in_repo=f) for f in remote
                           if f not in files and any(fnmatch(f, p) for p in PRUNE_PATTERNS)]
        info = api.create_commit(
            full_id,
            operations=operations,
            commit_message=commit_message or default_message,
            commit_description=commit_description if commit_description is not None else default_description,
            repo_type="dataset",
            revision=revision,
        )
    except HfHubHTTPError as err:
        raise _http_error(err, full_id, revision, endpoint) from None
    head = info.oid
    changed = head != head_before
    result = PushResult(
        repo_id=full_id,
        url=str(repo_url),
        revision=revision,
        commit_oid=head,
        commit_url=info.commit_url,
        changed=changed,
        files=tuple(files),
    )
    logger.info("%s %s (%s)", "pushed to" if changed else "already up to date:", result.url, result.commit_url)
    return result


def push_subset(
    subset,
    repo_id: str,
    *,
    report: Report | Mapping[str, Any] | None = None,
    source: str | Mapping[str, Any] | None = None,
    pool=None,
    config: PublishConfig | None = None,
    folder: str | os.PathLike | None = None,
    overwrite: bool = False,
    private: bool | None = None,
    revision: str | None = None,
    token: str | None = None,
    endpoint: str | None = None,
    commit_message: str | None = None,
    prune: bool = True,
    **options,
) -> PushResult:
    """Save a subset in Hub layout (:func:`save_subset`) and push it in one commit (:func:`push_folder`).

    Parameters
    ----------
    subset, report, source, pool, config, **options
        As for :func:`save_subset`.
    repo_id, private, revision, token, endpoint, commit_message, prune
        As for :func:`push_folder`.
    folder : str or path, optional
        Keep the staged files here (subject to ``overwrite``); default: a temporary folder, removed afterwards.

    Returns
    -------
    PushResult

    Examples
    --------
    >>> result = ds2_hf.push_subset(subset, "my-org/alpaca-ds2-1k", report=report, private=True)  # doctest: +SKIP
    >>> result.commit_url  # doctest: +SKIP
    """
    validate_repo_id(repo_id)
    resolve_token(token)  # fail before the (possibly long) save when no token can be found
    with contextlib.ExitStack() as stack:
        if folder is None:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ds2-push-"))) / "subset"
        path = save_subset(subset, folder, report=report, source=source, pool=pool, config=config,
                           overwrite=overwrite, repo_id=repo_id, **options)
        return push_folder(path, repo_id, private=private, revision=revision, token=token, endpoint=endpoint,
                           commit_message=commit_message, prune=prune)
