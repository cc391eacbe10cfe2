"""Configuration of the curation stage."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from ..knn import KnnConfig

METHODS = ("joint", "faithful")


@dataclass(frozen=True)
class CurationConfig:
    """Options of :func:`ds2_hf.curation.curate_scores`. Defaults are the paper's where the paper has one.

    Parameters
    ----------
    method : {"joint", "faithful"}, default "joint"
        ``"joint"``: the transition matrix, the prior and every sample's posterior over its true score are
        estimated together by EM over the k-NN graph, with the neighbour weights chosen by held-out likelihood
        (:mod:`ds2_hf.curation.joint`); it is the most accurate on every benchmark (BENCHMARKS.md).
        ``"faithful"``: the paper's method as the reference code runs it: HOC transition estimation from 2-NN
        consensus, SimiFeat 'rank' detection over random subsamples and the confidence gate
        (:mod:`ds2_hf.curation.faithful`).
    num_classes : int, default 6
        Score classes ``0..K-1`` (the paper's 0-5 scale).
    seed : int, default 0
        Seeds every random draw (the reference seeds nothing).
    confidence_threshold : float, optional
        A flagged sample takes its suggested score only when its confidence is at least this. Default:
        0.5 for ``"faithful"`` (the paper's ``confidence_prob``) and 0 for ``"joint"``, whose curated rating is
        the posterior argmax (the Bayes decision for accuracy).
    backoff : bool, optional
        Shrink corrections towards the raw ratings by the clusterability gate
        (:mod:`ds2_hf.curation.diagnostics`). Default: on for ``"joint"``, off for ``"faithful"`` (so the
        faithful mode stays faithful; turn it on there to protect it too).
    curated_value : {"argmax", "expected"}, default "argmax"
        ``"joint"`` only: the curated rating is the posterior's most likely score (maximises accuracy) or its
        rounded expected value (minimises absolute error on the ordinal scale).
    long_tail_k : int, default 10
        Neighbours averaged by the long-tail score.
    knn : KnnConfig
        k-NN graph options (exact or IVF search, recall target).
    num_rounds, sample_size, num_epochs, detect_k, solver, max_step, lr : reference values
        ``"faithful"`` only: 50 HOC rounds over random subsamples of ``min(50000, 0.9 N)`` rows, 51 detection
        epochs with ``k = 10`` (self included), the T solver (``"adam"``: the reference's 1,500 Adam steps at
        learning rate 0.1; ``"lbfgs"``: L-BFGS to convergence).
    duplicate_quirk : bool, default False
        ``"faithful"`` only: reproduce the reference's doubled dataset (comparison only; it biases the estimate).
    joint_ks, joint_alphas, joint_betas, joint_gammas : tuples
        ``"joint"`` only: the candidate numbers of neighbours and neighbour-weight parameters searched by
        held-out likelihood. A neighbour's weight is ``alpha * exp(beta * (s_ij - s_i1)) * (snn_ij / snn_i1) **
        gamma`` (cosine similarity ``s``, shared-nearest-neighbour similarity ``snn``, both relative to the nearest
        neighbour; ``gamma = 0`` ignores the latter). Set ``joint_gammas=(0.0,)`` for the faster cosine-only search.
    symmetric : bool, default True
        ``"joint"`` only: a sample's evidence also includes the ratings of the samples that have it among their
        nearest neighbours (reverse edges), not only its own nearest neighbours.
    neighbourhood_prior : {"auto", True, False}, default "auto"
        ``"joint"`` only: a second stage that replaces the first stage's product of neighbour votes by a prior
        equal to the similarity-weighted share of each true score among the neighbours' own (leave-this-row-out)
        posteriors, then refits ``T`` under it (:func:`ds2_hf.curation.neighbourhood.fit_neighbourhood`). ``"auto"``
        keeps it when it predicts held-out ratings better than the first stage; ``True`` always, ``False``
        never. Where kept, it raised accuracy by 0.5-1.9 points on the public generator's draws (BENCHMARKS.md).
    selection_rows : int, default 50000
        ``"joint"`` only: rows used to choose the candidate (all rows are used for the final fit).
    max_iter : int, default 100
        ``"joint"`` only: EM iterations.
    near_duplicate_threshold : float or None, default 0.995
        Cosine similarity from which two rows of different prompt groups join one duplicate group
        (``result.duplicate_group``, :func:`ds2_hf.duplicates.near_duplicate_groups`); ``None`` keeps only the
        exact duplicates passed in. Each duplicate group enters a selected subset at most once.
    allow_empty_classes : bool, default False
        Accept a score class that no row is rated with (otherwise an error, usually a wrong ``num_classes``).
    progress : bool, default True
        Progress bars on long steps.
    """

    method: str = "joint"
    num_classes: int = 6
    seed: int = 0
    confidence_threshold: float | None = None
    backoff: bool | None = None
    curated_value: str = "argmax"
    long_tail_k: int = 10
    knn: KnnConfig = field(default_factory=KnnConfig)
    num_rounds: int = 50
    sample_size: int = 50000
    num_epochs: int = 51
    detect_k: int = 10
    solver: str = "adam"
    max_step: int = 1501
    lr: float = 0.1
    duplicate_quirk: bool = False
    joint_ks: tuple = (10, 20, 40)
    joint_alphas: tuple = (0.25, 0.5, 1.0)
    joint_betas: tuple = (0.0, 10.0)
    joint_gammas: tuple = (0.0, 2.0)
    symmetric: bool = True
    neighbourhood_prior: bool | str = "auto"
    selection_rows: int = 50000
    max_iter: int = 100
    near_duplicate_threshold: float | None = 0.995
    allow_empty_classes: bool = False
    progress: bool = True

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method={self.method!r} is not supported; expected one of {METHODS}")
        if not isinstance(self.num_classes, int) or self.num_classes < 2:
            raise ValueError(f"num_classes={self.num_classes!r} must be an integer >= 2")
        if self.confidence_threshold is not None and not 0.0 <= self.confidence_threshold <= 1.0:
            raise ValueError(f"confidence_threshold={self.confidence_threshold} must lie in [0, 1]")
        if self.curated_value not in ("argmax", "expected"):
            raise ValueError(f"curated_value={self.curated_value!r}; expected 'argmax' or 'expected'")
        if self.neighbourhood_prior not in ("auto", True, False):
            raise ValueError(
                f"neighbourhood_prior={self.neighbourhood_prior!r}; expected 'auto', True or False"
            )
        if self.solver not in ("adam", "lbfgs"):
            raise ValueError(f"solver={self.solver!r}; expected 'adam' or 'lbfgs'")
        if self.near_duplicate_threshold is not None and not -1.0 <= self.near_duplicate_threshold <= 1.0:
            raise ValueError(
                f"near_duplicate_threshold={self.near_duplicate_threshold} is a cosine similarity and must lie in "
                "[-1, 1] (or be None to keep only exact duplicates)"
            )
        if self.long_tail_k < 1 or self.detect_k < 3:
            raise ValueError("long_tail_k must be >= 1 and detect_k >= 3")
        if isinstance(self.knn, dict):
            object.__setattr__(self, "knn", KnnConfig(**self.knn))
        for name in ("joint_ks", "joint_alphas", "joint_betas", "joint_gammas"):
            object.__setattr__(self, name, tuple(getattr(self, name)))

    @property
    def threshold(self) -> float:
        """The effective confidence threshold."""
        if self.confidence_threshold is not None:
            return self.confidence_threshold
        return 0.5 if self.method == "faithful" else 0.0

    @property
    def use_backoff(self) -> bool:
        """Whether the clusterability back-off applies."""
        return self.backoff if self.backoff is not None else self.method == "joint"

    @property
    def graph_k(self) -> int:
        """Neighbours the global graph needs for the joint method and the long-tail score."""
        return max(max(self.joint_ks), self.long_tail_k)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_options(cls, config: CurationConfig | None = None, **options) -> CurationConfig:
        """A config from an optional base config plus keyword overrides (unknown keys raise a clear error)."""
        valid = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - valid)
        if unknown:
            raise TypeError(f"unknown curation option(s) {unknown}; valid options: {sorted(valid)}")
        if config is None:
            return cls(**options)
        return cls(**{**asdict(config), "knn": config.knn, **options})
