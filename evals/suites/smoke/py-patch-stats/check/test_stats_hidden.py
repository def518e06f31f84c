import unittest

import stats


class HiddenStatsTest(unittest.TestCase):
    def test_mean_keeps_fractions(self):
        self.assertEqual(stats.mean([1, 2]), 1.5)
        self.assertAlmostEqual(stats.mean([1, 2, 2]), 5 / 3)

    def test_variance_uses_the_exact_mean(self):
        self.assertEqual(stats.variance([1, 2]), 0.25)

    def test_median_of_odd_count_is_the_middle_value(self):
        self.assertEqual(stats.median([5, 1, 3]), 3)

    def test_median_of_even_count_averages_the_middle_pair(self):
        self.assertEqual(stats.median([4, 1, 3, 2]), 2.5)

    def test_median_of_empty_list_is_an_error(self):
        with self.assertRaises(ValueError):
            stats.median([])

    def test_median_does_not_reorder_its_input(self):
        values = [3, 1, 2]
        stats.median(values)
        self.assertEqual(values, [3, 1, 2])


if __name__ == "__main__":
    unittest.main()
