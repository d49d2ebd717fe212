/* The public header of the mncompile_model library: the real one is ../src/mncompile_model.h.
 *
 * It lives in src/ because an Arduino library has one source folder; CMake and Zephyr put only this
 * folder on the application's include path, so the library's internal headers stay private. */
#include "../src/mncompile_model.h"
