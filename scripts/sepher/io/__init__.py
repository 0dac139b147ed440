"""sepher.io"""
