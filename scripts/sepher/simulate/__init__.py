"""sepher.simulate"""
