"""OpenAI's wire models (``/v1/*``): strict requests, responses built in the shapes Ollama writes."""
