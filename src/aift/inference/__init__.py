"""Serving: engines (transformers, llama.cpp, vLLM, Ollama), the model manager."""
