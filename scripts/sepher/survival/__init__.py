"""sepher.survival"""
