"""sepher.imaging"""
