"""mncompile: MobileNet -> int8 -> memory plan -> microcontroller firmware.

The package imports nothing heavy at start-up; TensorFlow is imported only
inside the functions that need it.
"""

__version__ = "0.1.0"
