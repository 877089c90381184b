"""Graders: every grader turns (card, answer) into a Grade against the card's rubric."""
