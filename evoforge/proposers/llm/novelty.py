"""A novelty gate: reject proposals that are near-copies of programs already seen.

Programs are compared as sets of shingles (runs of ``k`` consecutive code tokens,
with comments, layout and docstrings dropped). MinHash signatures estimate the
Jaccard similarity of two shingle sets, and locality-sensitive hashing over bands
of the signature finds the few stored programs worth comparing, so that a check
against tens of thousands of stored programs costs little more than tokenizing
the new program (a millisecond or so for a few hundred lines).

All hashing is deterministic (BLAKE2b and a fixed universal hash family), never
Python's salted ``hash()``: signatures are the same in every process and run.
"""

from __future__ import annotations

import hashlib
import io
import math
import token
import tokenize
from functools import lru_cache

import numpy as np
import numpy.typing as npt

__all__ = [
    "MinHash",
    "NoveltyGate",
    "choose_bands",
    "hash_shingles",
    "jaccard",
    "normalize_tokens",
    "shingle_hashes",
    "shingles",
    "signature",
    "similarity",
]

_EMPTY = np.uint64(2**32)  # signature value of an empty shingle set (above every hash)
_TOKEN_CACHE: dict[str, int] = {}
_TOKEN_CACHE_MAX = 1 << 18
_SEPARATOR = "\x1f"
_CHUNK = 4096  # shingles hashed at once, to bound the temporary matrix
_SKIPPED = frozenset(
    {
        token.COMMENT,
        token.NL,
        token.NEWLINE,
        token.INDENT,
        token.DEDENT,
        token.ENCODING,
        token.ENDMARKER,
    }
)
_VERIFY_SLACK = 0.15  # estimated similarity below threshold - slack is not verified
_MAX_VERIFY = 32  # candidates verified by exact Jaccard per check
RECENT_SKETCHES = 256  # sketches kept between a program's check and its add

Hashes = npt.NDArray[np.uint32]
Signature = npt.NDArray[np.uint64]


def normalize_tokens(code: str, *, drop_docstrings: bool = True) -> list[str]:
    """Return the code's tokens without comments, layout and (optionally) docstrings.

    Names, operators and literals are kept as written (numbers are not abstracted:
    a changed constant is a change). Code that does not tokenize is split on
    whitespace instead.

    Args:
        code: Python source.
        drop_docstrings: drop statements made of string literals only (docstrings
            and other bare strings).

    Returns:
        The token strings in order.
    """
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(code).readline))
    except (tokenize.TokenError, SyntaxError):
        return code.split()
    out: list[str] = []
    statement: list[tokenize.TokenInfo] = []

    def flush() -> None:
        if not (drop_docstrings and statement and all(t.type == token.STRING for t in statement)):
            out.extend(t.string for t in statement)
        statement.clear()

    for tok in tokens:
        if tok.type == token.NEWLINE:
            flush()
        elif tok.type in _SKIPPED or (tok.type == token.ERRORTOKEN and not tok.string.strip()):
            continue
        else:
            statement.append(tok)
    flush()
    return out


def shingles(tokens: list[str], k: int = 5) -> set[str]:
    """Return the set of runs of ``k`` consecutive tokens.

    A sequence shorter than ``k`` (but not empty) is one shingle.

    Args:
        tokens: the token strings.
        k: the shingle length.

    Returns:
        The shingles, each as its tokens joined by a unit separator.
    """
    if k < 1:
        raise ValueError("k must be at least 1")
    if not tokens:
        return set()
    if len(tokens) <= k:
        return {_SEPARATOR.join(tokens)}
    return {_SEPARATOR.join(tokens[i : i + k]) for i in range(len(tokens) - k + 1)}


def _blake64(text: str, salt: str = "") -> int:
    data = (salt + text).encode("utf-8", "surrogatepass")
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little")


def _token_hashes(tokens: list[str]) -> npt.NDArray[np.uint64]:
    """64-bit BLAKE2b hashes of the tokens (memoized: programs share most tokens)."""
    cache = _TOKEN_CACHE
    values: list[int] = []
    for tok in tokens:
        value = cache.get(tok)
        if value is None:
            if len(cache) >= _TOKEN_CACHE_MAX:
                cache.clear()
            value = cache[tok] = _blake64(tok)
        values.append(value)
    return np.array(values, dtype=np.uint64)


def _fmix64(h: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """Avalanche 64-bit values (the MurmurHash3 finalizer), wrapping mod 2**64."""
    h = h ^ (h >> np.uint64(33))
    h = h * np.uint64(0xFF51AFD7ED558CCD)
    h = h ^ (h >> np.uint64(33))
    h = h * np.uint64(0xC4CEB9FE1A85EC53)
    return h ^ (h >> np.uint64(33))


def hash_shingles(tokens: list[str], k: int = 5) -> Hashes:
    """Return the sorted, distinct 32-bit hashes of the ``k``-token shingles of ``tokens``.

    A shingle's hash mixes its tokens' BLAKE2b hashes, each weighted by a fixed
    per-position constant, so the order of tokens matters. The shingles are those
    of :func:`shingles` (one shingle when there are fewer than ``k`` tokens).

    Args:
        tokens: the token strings.
        k: the shingle length.

    Returns:
        A ``uint32`` array.
    """
    if k < 1:
        raise ValueError("k must be at least 1")
    if not tokens:
        return np.empty(0, dtype=np.uint32)
    values = _token_hashes(tokens)
    weights = _position_weights(k)
    if values.size <= k:
        combined = (values * weights[: values.size]).sum(keepdims=True, dtype=np.uint64)
    else:
        windows = np.lib.stride_tricks.sliding_window_view(values, k)
        combined = (windows * weights).sum(axis=1, dtype=np.uint64)
    return np.unique((_fmix64(combined) >> np.uint64(32)).astype(np.uint32))


@lru_cache(maxsize=16)
def _position_weights(k: int) -> npt.NDArray[np.uint64]:
    return np.array([_blake64(str(i), "evoforge-shingle:") | 1 for i in range(k)], dtype=np.uint64)


def shingle_hashes(code: str, k: int = 5) -> Hashes:
    """Return the sorted, distinct 32-bit hashes of a program's normalized shingles."""
    return hash_shingles(normalize_tokens(code), k)


def jaccard(a: Hashes, b: Hashes) -> float:
    """Exact Jaccard similarity of two sorted, distinct hash arrays (1.0 if both empty)."""
    if a.size == 0 and b.size == 0:
        return 1.0
    common = np.intersect1d(a, b, assume_unique=True).size
    return float(common / (a.size + b.size - common))


class MinHash:
    """MinHash signatures over shingle hashes, with a fixed universal hash family.

    Permutation ``i`` maps a 32-bit shingle hash ``x`` to the high 32 bits of
    ``(a_i * x + b_i) mod 2**64`` (multiply-add-shift hashing) with 64-bit
    ``a_i`` (odd) and ``b_i`` derived from ``seed`` by BLAKE2b, so signatures do
    not depend on the process, the platform or the numpy version.

    Attributes:
        num_perm: signature length.
        seed: selects the hash family.
        k: shingle length used by :meth:`signature`.
    """

    def __init__(self, num_perm: int = 128, seed: int = 0, *, k: int = 5) -> None:
        """Create the hash family.

        Args:
            num_perm: signature length (number of hash functions).
            seed: selects the hash family; signatures of different seeds do not compare.
            k: shingle length.
        """
        if num_perm < 1:
            raise ValueError("num_perm must be at least 1")
        self.num_perm = num_perm
        self.seed = seed
        self.k = k
        salt = f"evoforge-minhash:{seed}:"
        self._a = np.array([_blake64(f"{i}:a", salt) | 1 for i in range(num_perm)], dtype=np.uint64)
        self._b = np.array([_blake64(f"{i}:b", salt) for i in range(num_perm)], dtype=np.uint64)

    def from_hashes(self, hashes: Hashes) -> Signature:
        """Return the signature of a set of 32-bit shingle hashes."""
        if hashes.size == 0:
            return np.full(self.num_perm, _EMPTY, dtype=np.uint64)
        result = np.full(self.num_perm, _EMPTY, dtype=np.uint64)
        values = hashes.astype(np.uint64)
        for lo in range(0, values.size, _CHUNK):
            x = values[lo : lo + _CHUNK, None]
            values_min = ((x * self._a + self._b) >> np.uint64(32)).min(axis=0)
            np.minimum(result, values_min, out=result)
        return result

    def signature(self, code: str) -> Signature:
        """Return the signature of a program's normalized shingles."""
        return self.from_hashes(shingle_hashes(code, self.k))


@lru_cache(maxsize=8)
def _minhash(num_perm: int, seed: int, k: int) -> MinHash:
    return MinHash(num_perm, seed, k=k)


def signature(code: str, *, num_perm: int = 128, seed: int = 0, k: int = 5) -> Signature:
    """Return the MinHash signature of a program (see :class:`MinHash`)."""
    return _minhash(num_perm, seed, k).signature(code)


def similarity(sig_a: Signature, sig_b: Signature) -> float:
    """Estimated Jaccard similarity of two signatures: the share of equal positions.

    Raises:
        ValueError: if the signatures differ in length.
    """
    if sig_a.shape != sig_b.shape:
        raise ValueError(f"signature shapes differ: {sig_a.shape} and {sig_b.shape}")
    return float(np.mean(sig_a == sig_b))


def choose_bands(num_perm: int, threshold: float) -> int:
    """Pick the LSH band count for a similarity threshold.

    The rows per band are as many as possible (few false candidates) while a pair
    with similarity ``threshold - 0.05`` still shares a band with probability at
    least 0.999.

    Args:
        num_perm: signature length.
        threshold: the gate's similarity threshold.

    Returns:
        A divisor of ``num_perm``.
    """
    low = max(threshold - 0.05, 0.05)
    best = num_perm  # one row per band
    for bands in sorted(b for b in range(1, num_perm + 1) if num_perm % b == 0):
        rows = num_perm // bands
        if 1 - (1 - low**rows) ** bands >= 0.999:
            best = bands
            break
    return best


class NoveltyGate:
    """Remembers programs and tells whether a new one nearly copies one of them.

    Lookup uses MinHash LSH: a signature is cut into ``bands`` bands, and stored
    programs sharing any band exactly are candidates. Candidates are ranked by
    estimated similarity and the best few are verified by the exact Jaccard
    similarity of the shingle sets (cheap for programs), which decides.

    Attributes:
        threshold: similarity at or above which a program is not novel.
        num_perm: signature length.
        bands: LSH bands.
        rows: signature positions per band.
        exact: decide by exact Jaccard (True) or by the estimate only.
    """

    def __init__(
        self,
        threshold: float = 0.95,
        num_perm: int = 128,
        bands: int | None = None,
        *,
        k: int = 5,
        seed: int = 0,
        exact: bool = True,
    ) -> None:
        """Create an empty gate.

        Args:
            threshold: similarity in (0, 1] at or above which a program is rejected.
            num_perm: signature length.
            bands: LSH bands, a divisor of ``num_perm`` (None: chosen from the threshold).
            k: shingle length in tokens.
            seed: selects the hash family.
            exact: verify candidates by exact Jaccard of the shingle sets; False
                decides by the signature estimate and stores no shingle sets.
        """
        if not 0 < threshold <= 1:
            raise ValueError("threshold must be in (0, 1]")
        if bands is None:
            bands = choose_bands(num_perm, threshold)
        if bands < 1 or num_perm % bands:
            raise ValueError(f"bands ({bands}) must divide num_perm ({num_perm})")
        self.threshold = threshold
        self.num_perm = num_perm
        self.bands = bands
        self.rows = num_perm // bands
        self.exact = exact
        self._minhash = MinHash(num_perm, seed, k=k)
        self._tables: list[dict[bytes, list[int]]] = [{} for _ in range(bands)]
        self._ids: list[int] = []
        self._row_of: dict[int, int] = {}
        self._sigs = np.empty((64, num_perm), dtype=np.uint64)
        self._hashes: list[Hashes] = []
        # programs checked and not yet added: with requests running ahead of the
        # evaluators, many checks come between a program's check and its add
        self._recent: dict[str, tuple[Hashes, Signature]] = {}

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, candidate_id: object) -> bool:
        return candidate_id in self._row_of

    def _sketch(self, code: str) -> tuple[Hashes, Signature]:
        found = self._recent.get(code)
        if found is not None:
            return found
        hashes = shingle_hashes(code, self._minhash.k)
        sig = self._minhash.from_hashes(hashes)
        if len(self._recent) >= RECENT_SKETCHES:
            del self._recent[next(iter(self._recent))]  # the oldest
        self._recent[code] = (hashes, sig)
        return hashes, sig

    def _keys(self, sig: Signature) -> list[bytes]:
        r = self.rows
        return [sig[i * r : (i + 1) * r].tobytes() for i in range(self.bands)]

    def add(self, candidate_id: int, code: str) -> None:
        """Remember a program.

        Adding an id that is already stored does nothing.

        Args:
            candidate_id: the candidate's id, returned by :meth:`check`.
            code: the program.
        """
        if candidate_id in self._row_of:
            return
        hashes, sig = self._sketch(code)
        row = len(self._ids)
        if row == len(self._sigs):
            grown = np.empty((2 * row, self.num_perm), dtype=np.uint64)
            grown[:row] = self._sigs
            self._sigs = grown
        self._sigs[row] = sig
        self._ids.append(candidate_id)
        self._row_of[candidate_id] = row
        if self.exact:
            self._hashes.append(hashes)
        for table, key in zip(self._tables, self._keys(sig), strict=True):
            table.setdefault(key, []).append(row)

    def check(self, code: str) -> tuple[int, float] | None:
        """Find a stored program that ``code`` nearly copies.

        Args:
            code: the new program.

        Returns:
            ``(id, similarity)`` of the most similar stored program when that
            similarity is at least the threshold, else None. The similarity is
            the exact Jaccard of the shingle sets (or the estimate when the gate
            is not exact); ties go to the program stored first.
        """
        if not self._ids:
            return None
        hashes, sig = self._sketch(code)
        found: set[int] = set()
        for table, key in zip(self._tables, self._keys(sig), strict=True):
            rows = table.get(key)
            if rows:
                found.update(rows)
        if not found:
            return None
        rows_arr = np.array(sorted(found), dtype=np.int64)
        estimates = (self._sigs[rows_arr] == sig).mean(axis=1)
        order = np.argsort(-estimates, kind="stable")
        if not self.exact:
            top = int(order[0])
            if estimates[top] >= self.threshold:
                return self._ids[int(rows_arr[top])], float(estimates[top])
            return None
        floor = self.threshold - _VERIFY_SLACK
        best_row, best_sim = -1, -math.inf
        for index in order[:_MAX_VERIFY]:
            if estimates[index] < floor:
                break
            row = int(rows_arr[index])
            sim = jaccard(hashes, self._hashes[row])
            if sim > best_sim or (sim == best_sim and row < best_row):
                best_row, best_sim = row, sim
            if sim == 1.0:
                break
        if best_row >= 0 and best_sim >= self.threshold:
            return self._ids[best_row], best_sim
        return None
