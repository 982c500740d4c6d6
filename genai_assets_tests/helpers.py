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
