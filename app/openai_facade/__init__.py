"""An OpenAI-compatible facade: collections as models, grounded answers as chat completions."""
