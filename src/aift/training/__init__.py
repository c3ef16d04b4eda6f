"""Fine-tuning: datasets and chat templates, trainers (LoRA, DoRA, full), merge."""
