"""Text-to-pattern Hamming distances: mismatches at every alignment, fast.

``hamming(text, pattern)`` gets a text of length n and a pattern of length
m <= n, both ``bytes`` (alphabets: binary b"01", DNA b"ACGT", or all 256 byte
values), and returns n - m + 1 integers: entry i is the number of positions j
with pattern[j] != text[i + j]. The answer must be exact, as a list of ints or
a numpy integer array (floats are refused: round and convert FFT results). The
score is speed relative to a numpy reference.
"""

from operator import ne  # noqa: F401  (available to the evolved code)

import numpy as np  # noqa: F401


def each_alignment(text, pattern, count):
    """[count(text[i:i + m], pattern) for every alignment i], where m = len(pattern)."""
    m = len(pattern)
    return [count(text[i:i + m], pattern) for i in range(len(text) - m + 1)]


# EVOLVE-BLOCK-START
def pack_codes(codes, bits):
    """uint64 words of 64 // bits codes each; code c of a word sits at bits c*bits."""
    planes = (codes[:, None] >> np.arange(bits, dtype=np.uint8)) & 1
    packed = np.packbits(planes.ravel(), bitorder="little")
    pad = -len(packed) % 8
    if pad:
        packed = np.concatenate([packed, np.zeros(pad, dtype=np.uint8)])
    return packed.view("<u8")


def word_mismatches(tc, pc, bits, alignments):
    """Bit-parallel: XOR packed words, fold each code's bits, count with bitwise_count.

    Row r of T holds the text packed from offset r (shifted copies of one
    packing), so alignment q*k + r compares T[r, q + w] with pattern word w.
    """
    m = len(pc)
    k = 64 // bits
    words = -(-m // k)
    rows = -(-alignments // k)
    t0 = pack_codes(tc, bits)
    need = rows + words
    if len(t0) < need:
        t0 = np.concatenate([t0, np.zeros(need - len(t0), dtype=np.uint64)])
    shifts = (np.arange(k, dtype=np.uint64) * np.uint64(bits))[:, None]
    t = t0[None, :need - 1] >> shifts
    t[1:] |= t0[None, 1:need] << (np.uint64(64) - shifts[1:])
    p = pack_codes(pc, bits)
    ones = int("1".zfill(bits) * k, 2)  # lowest bit of every code
    last = ones & ((1 << ((m - (words - 1) * k) * bits)) - 1)  # codes of the last word
    counts = np.zeros((k, rows), dtype=np.int64)
    for w in range(words):
        x = t[:, w:w + rows] ^ p[w]
        y = x.copy()
        for s in range(1, bits):
            y |= x >> np.uint64(s)
        y &= np.uint64(ones if w < words - 1 else last)
        counts += np.bitwise_count(y)
    return counts.T.reshape(-1)[:alignments]


def pair_matches(t, p, alignments, text_counts):
    """Sparse symbols: every (text position, pattern position) pair of equal symbols
    votes for alignment i = text position - pattern position."""
    text_pos = np.argsort(t, kind="stable")  # text positions grouped by symbol
    first_of = np.cumsum(text_counts) - text_counts
    reps = text_counts[p]  # how often each pattern symbol occurs in the text
    total = int(reps.sum())
    j = np.repeat(np.arange(len(p)), reps)
    first = np.repeat(first_of[p] - (np.cumsum(reps) - reps), reps)
    diff = text_pos[first + np.arange(total)] - j
    diff = diff[(diff >= 0) & (diff < alignments)]
    return np.bincount(diff, minlength=alignments)


PAIR_COST = 1.0  # relative cost of one (text, pattern) pair of equal symbols
WORD_COST = 0.7  # relative cost of one packed-word comparison, plus 0.1 per bit


def hamming(text, pattern):
    """Bit-parallel words for small alphabets, equal-symbol pairs for large ones,
    whichever the cost estimate says is cheaper."""
    t = np.frombuffer(text, dtype=np.uint8)
    p = np.frombuffer(pattern, dtype=np.uint8)
    m = len(p)
    alignments = len(t) - m + 1
    text_counts = np.bincount(t, minlength=256)
    pattern_counts = np.bincount(p, minlength=256)
    present = (text_counts > 0) | (pattern_counts > 0)
    sigma = int(present.sum())
    bits = 1
    while (1 << bits) < sigma:
        bits *= 2
    word_cost = (WORD_COST + 0.1 * bits) * alignments * -(-m // (64 // bits))
    pair_cost = PAIR_COST * float(text_counts @ pattern_counts)
    if pair_cost < word_cost:
        return m - pair_matches(t, p, alignments, text_counts)
    if bits == 8:
        return word_mismatches(t, p, 8, alignments)
    code = (np.cumsum(present) - 1).astype(np.uint8)  # symbols renumbered 0..sigma-1
    return word_mismatches(code[t], code[p], bits, alignments)
# EVOLVE-BLOCK-END
