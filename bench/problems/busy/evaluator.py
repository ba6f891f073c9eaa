"""Burns about 0.25 s of CPU per evaluation: measures scaling with workers."""

import time


def evaluate(program_path):
    end = time.process_time() + 0.25
    x = 0
    while time.process_time() < end:
        x += 1
    return {"combined_score": float(len(open(program_path).read()) % 97)}
