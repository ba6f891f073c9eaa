import math

# EVOLVE-BLOCK-START
def approx(x):
    return x - x**3 / 6.0
# EVOLVE-BLOCK-END


def run(xs):
    return [approx(x) for x in xs]
