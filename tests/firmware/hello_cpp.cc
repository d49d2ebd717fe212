// The C++ half of the board self-test: a static constructor, which only runs
// if the startup code calls __libc_init_array() (it sits in .init_array), and
// a call through board.h from C++ (its extern "C" linkage).
#include <cstdint>

#include "board.h"

namespace {

// Volatile, so the compiler cannot fold the constructor into a constant
// initialisation: it must really run at startup.
volatile uint32_t offset = 0;

struct Constructed {
  Constructed() : value(0xC0DEu + offset) {}
  uint32_t value;
};

Constructed constructed;

}  // namespace

extern "C" uint32_t hello_cpp_value(void) { return constructed.value; }

extern "C" uint32_t hello_cpp_cpu_hz(void) { return board_cpu_hz(); }
