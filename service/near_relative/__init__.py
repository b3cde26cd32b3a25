"""The near-relative registry (近亲属备案)."""
