import unittest

from greeting import greet


class GreetTest(unittest.TestCase):
    def test_comma_after_hello(self):
        self.assertEqual(greet("Ann"), "Hello, Ann!")


if __name__ == "__main__":
    unittest.main()
