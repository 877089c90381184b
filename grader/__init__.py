"""grader: grade free-text flashcard answers, practise with FSRS, grow decks with reviewed cards."""

__version__ = "0.1.0"
