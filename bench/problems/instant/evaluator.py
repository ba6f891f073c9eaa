"""Returns at once, without even importing the candidate."""


def evaluate(program_path):
    return {"combined_score": float(len(open(program_path).read()) % 97)}
