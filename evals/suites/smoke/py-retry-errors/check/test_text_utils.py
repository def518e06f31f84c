import unittest

from text_utils import slugify


class SlugifyTest(unittest.TestCase):
    def test_words_are_lower_cased(self):
        self.assertEqual(slugify("Hello World"), "hello-world")

    def test_punctuation_collapses_to_one_hyphen(self):
        self.assertEqual(slugify("Rust, Python & Bash!"), "rust-python-bash")

    def test_digits_are_kept(self):
        self.assertEqual(slugify("Top 10 Tips"), "top-10-tips")


if __name__ == "__main__":
    unittest.main()
