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
def hamming(text, pattern):
    """Sliding window: for each pattern position, compare with every alignment at once."""
    t = np.frombuffer(text, dtype=np.uint8)
    p = np.frombuffer(pattern, dtype=np.uint8)
    alignments = len(t) - len(p) + 1
    distances = np.zeros(alignments, dtype=np.int64)
    for j in range(len(p)):
        distances += t[j:j + alignments] != p[j]
    return distances
# EVOLVE-BLOCK-END
