/*
 * Console text that generated code prints: labels and names made safe for the
 * line protocol `mncompile run` reads (console.c).
 *
 * Class labels and the model's name come from user files (a sidecar JSON, a
 * dataset's folder names, a file name) and may hold any byte: a newline would
 * let a label start a line of its own ("vector 3: PASS, ..."), an ANSI escape
 * would drive the terminal. Printed through mn_escape_text, every byte outside
 * printable ASCII (0x20..0x7e) becomes \xNN (two lowercase hex digits) and a
 * backslash becomes \\, so the text stays on its line, inert, and can be read
 * back unambiguously. C99, no heap, no stdio: usable from C and C++.
 */
#ifndef MNCOMPILE_CONSOLE_H
#define MNCOMPILE_CONSOLE_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The longest escape of one input byte ("\xNN") plus the terminating NUL: an
 * `out` of at least this size always makes progress. */
#define MN_ESCAPE_MIN_BUFFER 5u

/* Escape the leading bytes of the NUL-terminated `text` into `out` (`size`
 * bytes, NUL-terminated whenever size > 0): as many whole escapes as fit.
 * Returns where the rest of `text` starts, which points at its NUL when all of
 * it was written. Print a text of any length in pieces:
 *
 *     char chunk[64];
 *     while (*text != '\0') {
 *         text = mn_escape_text(text, chunk, sizeof chunk);
 *         fputs(chunk, stdout);
 *     }
 *
 * A NULL `text` counts as empty. */
const char *mn_escape_text(const char *text, char *out, size_t size);

#ifdef __cplusplus
}
#endif

#endif /* MNCOMPILE_CONSOLE_H */
