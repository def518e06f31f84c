import unittest

from app import settings


class SettingsTest(unittest.TestCase):
    def test_debug_is_off_by_default(self):
        self.assertIs(settings.load({})["debug"], False)

    def test_environment_can_still_turn_debug_on(self):
        self.assertIs(settings.load({"APP_DEBUG": "1"})["debug"], True)

    def test_other_defaults_are_unchanged(self):
        loaded = settings.load({})
        self.assertEqual((loaded["host"], loaded["port"]), ("0.0.0.0", 8080))


if __name__ == "__main__":
    unittest.main()
