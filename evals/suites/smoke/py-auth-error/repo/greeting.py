"""Greetings for the front desk."""


def greet(name):
    return f"Hello {name}!"
