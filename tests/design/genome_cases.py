"""Helpers shared by the genome-space tests."""


def mutation_history(space, rng, steps: int = 50) -> list:
    """A sampled genome followed by ``steps`` successive mutations of it."""
    genome = space.sample(rng)
    history = [genome]
    for _ in range(steps):
        genome = space.mutate(genome, rng)
        history.append(genome)
    return history
