"""A program whose evaluation returns at once: measures framework overhead."""


# EVOLVE-BLOCK-START
def f(x):
    return 2.0 * x + 1.0
# EVOLVE-BLOCK-END
