"""Question-aware answer understanding: the answer schema, its model and its reader."""
