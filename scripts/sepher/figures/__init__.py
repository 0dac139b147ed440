"""sepher.figures"""
