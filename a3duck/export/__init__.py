"""Take an adapter anywhere (`a3duck export`): gguf.py (a merged Llama as GGUF), modelfile.py
(Ollama Modelfile), lora.py (IA3 as a PEFT LoRA by truncated SVD), fidelity.py (KL / top-1
against the IA3 model), exporter.py (the command's logic). Core layer: imports only the core."""
