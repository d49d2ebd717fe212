/*
 * The system calls newlib (and newlib-nano, --specs=nano.specs) needs, so the
 * firmware links without libnosys or librdimon:
 *
 *   _write    fd 1 (stdout) and 2 (stderr) go to board_console_write();
 *   _sbrk     malloc's heap, between the linker script's __heap_start and
 *             __heap_end (the gap between the RAM sections and the stack);
 *   _exit     board_exit() (exit() and abort() end here);
 *   _close _fstat _isatty _lseek _read _kill _getpid: stubs for a system
 *             with no files and no processes; stdout/stderr are terminals.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "board.h"

/* newlib declares these only while building itself (_COMPILING_NEWLIB). */
int _write(int fd, const void *buf, size_t len);
int _read(int fd, void *buf, size_t len);
void *_sbrk(ptrdiff_t increment);
void _exit(int status);
int _close(int fd);
int _fstat(int fd, struct stat *st);
int _isatty(int fd);
off_t _lseek(int fd, off_t offset, int whence);
int _kill(int pid, int sig);
int _getpid(void);

/* Linker script symbols: the heap's bounds. */
extern char __heap_start[];
extern char __heap_end[];

int _write(int fd, const void *buf, size_t len)
{
    if (fd != 1 && fd != 2) {
        errno = EBADF;
        return -1;
    }
    board_console_write((const char *)buf, len);
    return (int)len;
}

int _read(int fd, void *buf, size_t len)
{
    (void)fd;
    (void)buf;
    (void)len;
    return 0; /* end of file: there is no console input */
}

void *_sbrk(ptrdiff_t increment)
{
    static char *brk; /* .bss: NULL until the first call */
    if (brk == NULL) {
        brk = __heap_start;
    }
    char *previous = brk;
    if (increment > __heap_end - brk || increment < __heap_start - brk) {
        errno = ENOMEM;
        return (void *)-1;
    }
    brk += increment;
    return previous;
}

void _exit(int status)
{
    board_exit(status);
}

int _close(int fd)
{
    (void)fd;
    errno = EBADF;
    return -1;
}

int _fstat(int fd, struct stat *st)
{
    (void)fd;
    st->st_mode = S_IFCHR; /* a character device: newlib line-buffers stdout */
    return 0;
}

int _isatty(int fd)
{
    return fd >= 0 && fd <= 2;
}

off_t _lseek(int fd, off_t offset, int whence)
{
    (void)fd;
    (void)offset;
    (void)whence;
    errno = ESPIPE;
    return (off_t)-1;
}

int _kill(int pid, int sig)
{
    (void)pid;
    (void)sig;
    errno = EINVAL;
    return -1;
}

int _getpid(void)
{
    return 1;
}
