"""The loop: the session loop, prompt building and the model adapters.

Import `leharness.loop.runner` and `leharness.loop.model` directly; this
package's __init__ stays empty so that importing it never pulls in `openai`.
"""
