"""The one exception type for bad user input: printed as one sentence, exit code 2."""


class UserError(Exception):
    """A model, file or option the flow cannot handle; the message is one sentence."""
