import unittest

from dates import is_leap_year


class LeapYearTest(unittest.TestCase):
    def test_every_fourth_year_is_a_leap_year(self):
        self.assertTrue(is_leap_year(2024))
        self.assertFalse(is_leap_year(2023))

    def test_centuries_are_not_leap_years(self):
        self.assertFalse(is_leap_year(1900))
        self.assertFalse(is_leap_year(2100))

    def test_every_fourth_century_is_a_leap_year(self):
        self.assertTrue(is_leap_year(2000))
        self.assertTrue(is_leap_year(1600))


if __name__ == "__main__":
    unittest.main()
