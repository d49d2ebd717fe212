"""The preprocessing contract and the camera-pixel path."""
