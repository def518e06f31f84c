import unittest

import calc


class CalcTest(unittest.TestCase):
    def test_add_sums_two_numbers(self):
        self.assertEqual(calc.add(2, 3), 5)
        self.assertEqual(calc.add(-4, 1), -3)

    def test_multiply_is_unchanged(self):
        self.assertEqual(calc.multiply(3, 4), 12)

    def test_total_sums_every_value(self):
        self.assertEqual(calc.total([1, 2, 3, 4]), 10)
        self.assertEqual(calc.total([]), 0)


if __name__ == "__main__":
    unittest.main()
