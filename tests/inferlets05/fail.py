"""fail: one stdout line, then an exception, so the process ends with an `error` event whose
text starts with "RuntimeError: <message>"."""


def main(message: str = "boom"):
    print("about to fail")
    raise RuntimeError(message)
