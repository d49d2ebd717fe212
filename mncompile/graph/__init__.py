"""The graph stage: a .tflite flatbuffer as frozen dataclasses (`ir`), read by `reader`."""
