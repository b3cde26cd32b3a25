"""The roll of recipients: who receives a benefit, since when, and when they are re-checked."""
