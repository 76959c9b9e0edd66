"""The ask/tell population core: search spaces, history, exploit rules, explorers, methods."""
