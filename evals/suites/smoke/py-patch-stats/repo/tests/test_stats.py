import unittest

import stats


class MeanTest(unittest.TestCase):
    def test_mean_of_whole_numbers(self):
        self.assertEqual(stats.mean([2, 4, 6]), 4)

    def test_mean_of_empty_list_is_an_error(self):
        with self.assertRaises(ValueError):
            stats.mean([])


if __name__ == "__main__":
    unittest.main()
