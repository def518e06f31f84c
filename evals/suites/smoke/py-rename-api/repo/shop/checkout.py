"""Checkout: turns a cart into an order summary."""

from .cart import get_totl, is_empty


def checkout(items, discount=0):
    if is_empty(items):
        raise ValueError("cannot check out an empty cart")
    subtotal = get_totl(items)
    return {"subtotal": subtotal, "total": get_totl(items) - discount}
