"""The OpenAI-compatible HTTP server: an engine thread (``runner``), request schemas and the FastAPI app."""
