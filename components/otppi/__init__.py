"""OTP-Pi: an SMS, OTP and email gateway appliance for the Raspberry Pi."""

__version__ = "0.1.0"
