"""Input drift per model: a recent window of requests against a baseline window.

Two views of what users send a model are compared:

- **length**: the request texts' lengths in characters, binned on fixed log-spaced edges
  (`LENGTH_EDGES`) so that any two windows share bins. Scored with the Population
  Stability Index, the usual score for one binned variable, whose conventional reading
  is < 0.1 stable, 0.1-0.25 moderate, > 0.25 a real shift: `PSI_THRESHOLD` is 0.25.
- **tokens**: the prompt's token ids hashed into `PROFILE_BUCKETS` buckets
  (`token_profile`, stored per request by the request log). Scored with the Jensen-Shannon
  divergence in bits: bounded in [0, 1] and symmetric, and unlike PSI it does not blow up
  on the many buckets one window leaves empty (PSI's log ratio is dominated by whatever
  smoothing fills an empty bin). `JS_THRESHOLD` is 0.1 bits: topic or language changes
  (prose to code, English to French) measure 0.2-0.6; resamples of one source stay well
  under 0.05 once each window holds a few thousand tokens.

Both windows are smoothed with one shared prior before any logarithm: bins empty in both
windows are dropped (they carry no evidence, and per-window smoothing would give them
different probabilities in windows of different sizes: 2000 against 20 requests of one
distribution scored PSI 0.89), and each remaining bin gets ``SMOOTHING * k`` pseudo-counts
spread in proportion to the pooled share of that bin, so a bin both windows use equally
keeps equal probabilities whatever the window sizes. With one bin or none in use
(k <= 1) the windows cannot differ: the score is 0 and nothing is flagged.

A score alone is not a flag: small windows differ by chance, so a feature is
flagged only when both windows hold at least `MIN_REQUESTS` requests and the score crosses
both its threshold and its *chance level*, the score that two samples of one distribution
of these sizes exceed only 1 % of the time. To second order both scores are a scaled
chi-square statistic of homogeneity, PSI ~ (1/n1 + 1/n2) X and JS (nats) ~ (1/n1 + 1/n2)
X / 8 with X ~ chi2(k - 1) over the k bins either window uses, so the chance level is the
99th percentile of chi2(k - 1) (Wilson-Hilferty) scaled the same way. Tokens within one
request are not independent, so the chance level is optimistic; the thresholds, not the
chance level, carry the decision for large windows.

Hashing (a multiplicative hash of the id, modulo the bucket count) keeps the profile
small and makes it impossible to read the text back: each bucket merges hundreds of
vocabulary entries, and order is gone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np

PROFILE_BUCKETS = 256
# Knuth's multiplicative constant (2^32 / golden ratio): spreads consecutive ids (which
# tokenizers give to related pieces) across buckets.
_HASH_MULTIPLIER = 2_654_435_761
LENGTH_EDGES: tuple[float, ...] = (0, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, float("inf"))
SMOOTHING = 0.5
PSI_THRESHOLD = 0.25
JS_THRESHOLD = 0.1
MIN_REQUESTS = 20
# The standard normal's 99th percentile: chance levels are exceeded by chance 1 % of the time.
_Z_99 = 2.3263


def token_profile(token_ids: Sequence[int], buckets: int = PROFILE_BUCKETS) -> dict[str, Any]:
    """``{"buckets": n, "pairs": [bucket, count, bucket, count, ...]}`` of the ids hashed (sparse).

    A flat list of pairs is about half the bytes of a ``{"bucket": count}`` object, and the
    log keeps one profile per request.
    """
    ids = np.asarray(token_ids, dtype=np.uint64)
    hashed = ((ids * np.uint64(_HASH_MULTIPLIER)) & np.uint64(0xFFFFFFFF)) % np.uint64(buckets)
    values, counts = np.unique(hashed, return_counts=True)
    pairs = [int(x) for pair in zip(values, counts, strict=True) for x in pair]
    return {"buckets": buckets, "pairs": pairs}


def add_profile(total: np.ndarray, profile: Mapping[str, Any] | None) -> None:
    """Add one stored profile to ``total`` in place; other bucket counts (or none) are skipped.

    Reads both the compact ``pairs`` form and the older ``{"counts": {bucket: count}}`` rows.
    """
    buckets = total.size
    if not profile or profile.get("buckets") != buckets:
        return
    pairs = profile.get("pairs")
    if pairs is not None:
        items: Iterable[tuple[Any, Any]] = zip(pairs[0::2], pairs[1::2], strict=False)
    else:
        items = profile.get("counts", {}).items()
    for bucket, count in items:
        index = int(bucket)
        if 0 <= index < buckets:
            total[index] += int(count)


def profile_counts(
    profiles: Iterable[Mapping[str, Any] | None], buckets: int = PROFILE_BUCKETS
) -> np.ndarray:
    """Summed counts per bucket; profiles with another bucket count (or none) are skipped."""
    total = np.zeros(buckets, dtype=np.int64)
    for profile in profiles:
        add_profile(total, profile)
    return total


def length_counts(lengths: Iterable[int]) -> np.ndarray:
    """Counts of ``lengths`` per `LENGTH_EDGES` bin."""
    counts, _ = np.histogram(np.asarray(list(lengths), dtype=np.float64), bins=np.asarray(LENGTH_EDGES))
    return counts.astype(np.int64)


def length_bin_labels() -> list[str]:
    """Readable names of the length bins, e.g. ``"16-31"`` and ``"8192+"``."""
    labels = []
    for low, high in pairwise(LENGTH_EDGES):
        labels.append(f"{int(low)}+" if high == float("inf") else f"{int(low)}-{int(high) - 1}")
    return labels


def smoothed_pair(baseline: np.ndarray, recent: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both windows' probabilities over the bins either uses, smoothed with one shared prior.

    The prior is the pooled proportion of each bin times ``SMOOTHING * k`` pseudo-counts,
    so an empty bin of the smaller window is filled in proportion to how common it is
    overall, not uniformly (uniform filling inflates the small window's empty bins).
    """
    b = np.asarray(baseline, dtype=np.float64)
    r = np.asarray(recent, dtype=np.float64)
    used = (b + r) > 0
    b, r = b[used], r[used]
    pooled = (b + r) / (b.sum() + r.sum()) if used.any() else b
    alpha = SMOOTHING * b.size
    return (b + alpha * pooled) / (b.sum() + alpha), (r + alpha * pooled) / (r.sum() + alpha)


def _no_evidence(baseline: np.ndarray, recent: np.ndarray) -> bool:
    b, r = np.asarray(baseline), np.asarray(recent)
    return b.sum() == 0 or r.sum() == 0 or int(np.count_nonzero(b + r)) <= 1


def psi(baseline: np.ndarray, recent: np.ndarray) -> float:
    """Population Stability Index of two count vectors over the same bins (shared smoothing)."""
    if _no_evidence(baseline, recent):
        return 0.0
    expected, actual = smoothed_pair(baseline, recent)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def js_divergence(baseline: np.ndarray, recent: np.ndarray) -> float:
    """Jensen-Shannon divergence in bits (0 = same, 1 = disjoint) of two count vectors."""
    if _no_evidence(baseline, recent):
        return 0.0
    p, q = smoothed_pair(baseline, recent)
    m = (p + q) / 2
    return float(0.5 * np.sum(p * np.log2(p / m)) + 0.5 * np.sum(q * np.log2(q / m)))


def chi2_quantile_99(dof: int) -> float:
    """The 99th percentile of chi-square with ``dof`` degrees of freedom (Wilson-Hilferty)."""
    if dof <= 0:
        return 0.0
    spread = 2.0 / (9.0 * dof)
    return float(dof * (1.0 - spread + _Z_99 * np.sqrt(spread)) ** 3)


def chance_level(metric: str, baseline: np.ndarray, recent: np.ndarray) -> float:
    """The score two samples of one distribution, of these sizes, exceed 1 % of the time."""
    n1, n2 = float(np.sum(baseline)), float(np.sum(recent))
    if n1 == 0 or n2 == 0:
        return float("inf")
    bins = int(np.count_nonzero(np.asarray(baseline) + np.asarray(recent)))
    scaled = (1.0 / n1 + 1.0 / n2) * chi2_quantile_99(bins - 1)
    return scaled if metric == "PSI" else scaled / (8.0 * float(np.log(2.0)))


@dataclass(frozen=True)
class FeatureDrift:
    """One compared feature: its score, the threshold, the counts behind it and the verdict."""

    name: str
    metric: str  # "PSI" or "JS"
    score: float
    threshold: float
    chance: float
    baseline_counts: np.ndarray
    recent_counts: np.ndarray
    flagged: bool


@dataclass(frozen=True)
class DriftReport:
    """Drift of one model's inputs: the recent window against the baseline window."""

    baseline_requests: int
    recent_requests: int
    length: FeatureDrift
    tokens: FeatureDrift
    enough_data: bool

    @property
    def flagged(self) -> bool:
        return self.length.flagged or self.tokens.flagged

    @property
    def summary(self) -> str:
        if not self.enough_data:
            return (
                f"Not enough requests to judge drift ({self.baseline_requests} baseline, "
                f"{self.recent_requests} recent; at least {MIN_REQUESTS} each are needed)."
            )
        parts = [
            f"{f.name} {f.metric} {f.score:.3f} (threshold {f.threshold:g})"
            for f in (self.length, self.tokens)
        ]
        verdict = "Drift detected" if self.flagged else "No drift"
        return f"{verdict}: " + "; ".join(parts) + "."


@dataclass(frozen=True)
class WindowInputs:
    """What drift needs from each request of a window: its length and its token profile."""

    input_chars: int
    token_profile: Mapping[str, Any] | None


def _feature(name: str, metric: str, baseline: np.ndarray, recent: np.ndarray, enough: bool) -> FeatureDrift:
    score = psi(baseline, recent) if metric == "PSI" else js_divergence(baseline, recent)
    threshold = PSI_THRESHOLD if metric == "PSI" else JS_THRESHOLD
    # One bin in use (or an empty window) is no evidence of a shift either way.
    has_data = not _no_evidence(baseline, recent)
    chance = chance_level(metric, baseline, recent)
    flagged = enough and has_data and score >= max(threshold, chance)
    return FeatureDrift(
        name, metric, score if has_data else 0.0, threshold, chance, baseline, recent, flagged
    )


def compare_counts(
    *,
    baseline_requests: int,
    recent_requests: int,
    baseline_lengths: np.ndarray,
    recent_lengths: np.ndarray,
    baseline_tokens: np.ndarray,
    recent_tokens: np.ndarray,
) -> DriftReport:
    """Length PSI and token-profile JS from counts already binned (e.g. aggregated in SQL)."""
    enough = baseline_requests >= MIN_REQUESTS and recent_requests >= MIN_REQUESTS
    length = _feature("length", "PSI", baseline_lengths, recent_lengths, enough)
    tokens = _feature("tokens", "JS", baseline_tokens, recent_tokens, enough)
    return DriftReport(baseline_requests, recent_requests, length, tokens, enough)


def compare_windows(baseline: Sequence[WindowInputs], recent: Sequence[WindowInputs]) -> DriftReport:
    """Length PSI and token-profile JS of ``recent`` against ``baseline``, with flags."""
    return compare_counts(
        baseline_requests=len(baseline),
        recent_requests=len(recent),
        baseline_lengths=length_counts(r.input_chars for r in baseline),
        recent_lengths=length_counts(r.input_chars for r in recent),
        baseline_tokens=profile_counts(r.token_profile for r in baseline),
        recent_tokens=profile_counts(r.token_profile for r in recent),
    )
