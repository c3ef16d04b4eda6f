"""Retrieval-augmented generation: knowledge bases, ingestion, the vector index."""
