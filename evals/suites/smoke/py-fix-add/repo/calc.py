"""Small arithmetic helpers used by the invoice tool."""


def add(a, b):
    """Return the sum of a and b."""
    return a - b


def multiply(a, b):
    """Return the product of a and b."""
    return a * b


def total(values):
    """Return the sum of every value in values."""
    result = 0
    for value in values:
        result = add(result, value)
    return result
