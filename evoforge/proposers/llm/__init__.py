"""The LLM proposer: prompts, OpenAI-compatible clients, reply parsing and applying."""
