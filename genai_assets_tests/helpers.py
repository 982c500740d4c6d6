"""Small helpers and data shared by several test modules (fixtures stay in ``conftest.py``)."""

# Eight poem-like lines: enough repeated words for a tiny BPE tokenizer and a few training steps.
POEM_LINES = [
    "The moon is up and the sea is still",
    "And every wave lies down to sleep",
    "O gentle love, the night is long",
    "Shall I compare thee to the summer rose",
    "The wind goes over the hill and the mill",
    "My heart is heavy as the evening bell",
    "Sing to me softly of the river and the reed",
    "Where the old stars wander in the deep",
]


def vote_concurrently(
    url: str, sheet_id: str, item_ids: list[str], raters: int, threads: int, repeats: int = 1
):
    """``threads`` threads (thread i votes as ``rater{i % raters}``), each with its own ``RatingsStore``
    on ``url`` as separate app processes would, vote "1" on every item ``repeats`` times at once.
    Returns whether each ``add_rating`` call stored a new row."""
    import threading

    from genai_assets.evaluation.ratings_db import RatingsStore

    outcomes: list[bool] = []
    lock = threading.Lock()

    def rater(index: int) -> None:
        store = RatingsStore(url)
        for item in item_ids:
            for _ in range(repeats):
                stored = store.add_rating(f"rater{index % raters}", sheet_id, item, "1")
                with lock:
                    outcomes.append(stored)
        store.close()

    workers = [threading.Thread(target=rater, args=(index,)) for index in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return outcomes
