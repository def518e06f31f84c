"""Stock levels of the warehouse."""


def restock(stock, item, quantity):
    """Add quantity units of item to the stock mapping and return the new level."""
    stock[item] = stock.get(item, 0) - quantity
    return stock[item]


def ship(stock, item, quantity):
    """Remove quantity units of item; refuse to go below zero."""
    if stock.get(item, 0) < quantity:
        raise ValueError(f"not enough {item} in stock")
    stock[item] -= quantity
    return stock[item]
