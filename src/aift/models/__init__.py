"""Model references, local files, the registry of available models and the loading policy."""
