"""Wire models shared by the API, the connectors and the rules.

This package imports nothing else of hedui: it is the common language.
"""
