import unittest

from inventory import restock, ship


class InventoryTest(unittest.TestCase):
    def test_restock_adds_units(self):
        stock = {"bolts": 3}
        self.assertEqual(restock(stock, "bolts", 4), 7)
        self.assertEqual(restock(stock, "nuts", 2), 2)

    def test_ship_removes_units(self):
        stock = {"bolts": 3}
        self.assertEqual(ship(stock, "bolts", 2), 1)


if __name__ == "__main__":
    unittest.main()
