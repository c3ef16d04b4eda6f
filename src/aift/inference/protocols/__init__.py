"""Wire formats of the OpenAI- and Ollama-compatible APIs, mapped onto aift's schemas."""
