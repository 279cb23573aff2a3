"""The one exception type the CLI turns into a single error line and exit code 2."""


class UserError(Exception):
    """Bad input from the user (file, option, value, checkpoint): say what and where, no traceback."""
