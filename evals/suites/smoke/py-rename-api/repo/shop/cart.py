"""Cart contents and their price."""


# TODO: fix the typo in this function's name.
def get_totl(items):
    """Total price of (price, quantity) pairs."""
    return sum(price * quantity for price, quantity in items)


def is_empty(items):
    return not items
