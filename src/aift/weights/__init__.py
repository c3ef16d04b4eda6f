"""Operations on model weights shared by serving, training and export: LoRA deltas and
the streamed merge (`lora`), PEFT → GGUF adapter conversion (`gguf_adapter`), llama.cpp's
quantizer (`quantize`) and the GGUF facts they share (`gguf_names`)."""
