/*
 * Error codes and messages, generated from FDX_ERROR_TABLE so that the two
 * cannot drift apart.
 */
#include <stdarg.h>
#include <stdio.h>

#include "flowdex/error.h"

const char *fdx_strerror(int code)
{
    switch (code) {
#define FDX__MSG(name, value, msg) \
    case value:                    \
        return msg;
        FDX_ERROR_TABLE(FDX__MSG)
#undef FDX__MSG
    }
    return "unknown error";
}

const char *fdx_error_name(int code)
{
    switch (code) {
#define FDX__NAME(name, value, msg) \
    case value:                     \
        return #name;
        FDX_ERROR_TABLE(FDX__NAME)
#undef FDX__NAME
    }
    return "FDX_EUNKNOWN";
}

int fdx_error_set(fdx_error *err, int code, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL)
        return code;
    err->code = code;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    return code;
}
