"""Early warnings: what changed between a recipient's approved report and a re-check."""
