/*
 * What the C and C++ runtimes expect from the startup files that
 * -nostartfiles leaves out (crti.o, crtn.o, crtbegin.o).
 */

/* newlib's __libc_init_array() and __libc_fini_array() call _init() and
 * _fini() around the .init_array/.fini_array entries; the constructors
 * themselves run from those arrays, so these have nothing to do. */
void _init(void);
void _fini(void);

/* Weak, in case a toolchain links crti.o after all. */
__attribute__((weak)) void _init(void)
{
}

__attribute__((weak)) void _fini(void)
{
}

/* The handle g++ passes to __cxa_atexit() when it registers a static object's
 * destructor (normally defined by crtbegin.o). Weak for the same reason. */
__attribute__((weak)) void *__dso_handle = &__dso_handle;
