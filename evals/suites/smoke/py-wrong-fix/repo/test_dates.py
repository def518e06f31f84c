import unittest

from dates import is_leap_year


class LeapYearTest(unittest.TestCase):
    def test_years(self):
        self.assertTrue(is_leap_year(2024))
        self.assertFalse(is_leap_year(2023))
        self.assertTrue(is_leap_year(2000))


if __name__ == "__main__":
    unittest.main()
