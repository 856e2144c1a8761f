"""The serving product: a continuous-batching engine over one base with many IA3 adapters, an
adapter store (on demand, LRU) and the OpenAI-compatible API at /v1. Imports only the core."""
