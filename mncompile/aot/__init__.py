"""Interpreter-free (ahead-of-time) C backend: the quantization arithmetic it precomputes
(`quantmath`) for mncompile's own int8 kernel library in ``firmware/kernels``."""
