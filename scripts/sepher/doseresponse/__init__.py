"""sepher.doseresponse"""
