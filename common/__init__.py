"""The shared floor every stage imports: the prompt and chat format, atomic writes, paths, provenance, JSONL
and JSON I/O, Hub references, and the tiny CPU stand-in model. It imports nothing of the project's own."""
