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
def mismatches(window, pattern):
    """Number of positions where two byte strings of equal length differ."""
    return sum(1 for j in range(len(pattern)) if window[j] != pattern[j])


def hamming(text, pattern):
    """Naive O(nm): count the mismatches of the text window at every alignment."""
    return each_alignment(text, pattern, mismatches)
# EVOLVE-BLOCK-END
