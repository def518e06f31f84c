"""Calendar helpers."""


def is_leap_year(year):
    """True when year is a leap year in the Gregorian calendar."""
    return year % 4 == 0 and year % 100 != 0
