"""Pure tensor -> tensor physics of LLM inference (roofline convention)."""
