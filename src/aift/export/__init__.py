"""Export and quantization: GGUF (llama.cpp, Ollama), AWQ (llm-compressor)."""
