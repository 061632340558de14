"""Written answers: a grounded prompt, the LLM's answer, citations that hold."""
