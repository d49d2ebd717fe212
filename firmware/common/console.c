/*
 * Console output without stdio, for fault handlers and board_exit(): the C
 * library may be what broke, or may not be initialised yet. Also the escaping
 * of user-supplied text (labels, names) that generated code prints (console.h).
 */
#include <stddef.h>

#include "board.h"
#include "board_support.h"
#include "console.h"

void mn_console_puts(const char *text)
{
    size_t len = 0;
    while (text[len] != '\0') {
        len++;
    }
    board_console_write(text, len);
}

void mn_console_put_hex(uint32_t value)
{
    static const char digits[] = "0123456789abcdef";
    char text[10] = {'0', 'x'};
    for (int i = 0; i < 8; i++) {
        text[2 + i] = digits[(value >> (28 - 4 * i)) & 0xFu];
    }
    board_console_write(text, sizeof text);
}

void mn_console_put_int(int value)
{
    char text[11];
    size_t at = sizeof text;
    uint32_t magnitude = value < 0 ? 0u - (uint32_t)value : (uint32_t)value;
    do {
        text[--at] = (char)('0' + magnitude % 10u);
        magnitude /= 10u;
    } while (magnitude != 0u);
    if (value < 0) {
        text[--at] = '-';
    }
    board_console_write(text + at, sizeof text - at);
}

const char *mn_escape_text(const char *text, char *out, size_t size)
{
    static const char digits[] = "0123456789abcdef";
    size_t at = 0;
    if (text == NULL) {
        text = "";
    }
    if (size == 0u) {
        return text;
    }
    while (*text != '\0') {
        const unsigned char c = (unsigned char)*text;
        const size_t need = c == '\\' ? 2u : (c < 0x20u || c > 0x7eu) ? 4u : 1u;
        if (need >= size - at) {
            break; /* this escape and the NUL do not both fit: the caller prints the rest later */
        }
        if (need == 1u) {
            out[at++] = (char)c;
        } else {
            out[at++] = '\\';
            if (need == 2u) {
                out[at++] = '\\';
            } else {
                out[at++] = 'x';
                out[at++] = digits[c >> 4];
                out[at++] = digits[c & 0xFu];
            }
        }
        ++text;
    }
    out[at] = '\0';
    return text;
}
