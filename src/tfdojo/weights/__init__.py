"""Getting real weights in: GGUF files, Hugging Face folders, and the bundled-model registry."""
