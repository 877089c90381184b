"""Growing decks: propose cards (deterministic strategies or an LLM), check them, store them pending.

Nothing here writes a deck: a proposal enters a deck only through `grader.review`.
"""
