"""Raw NL->Bash sources to validated, filtered, leak-free chat JSONL splits with a funnel report."""
