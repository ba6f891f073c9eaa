"""The trivial problem of the peer benchmarks: the score is what value() returns."""


# EVOLVE-BLOCK-START
def value():
    """The number to maximize."""
    return 0
# EVOLVE-BLOCK-END
