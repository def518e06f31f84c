"""A toy shop: carts, checkout and sales reports."""
