/*
 * flowdex error codes.
 *
 * Every library function that can fail returns an int: zero (or a count) on
 * success and one of the negative FDX_E* codes below on failure.  The codes
 * and their messages come from one table, FDX_ERROR_TABLE, so that a new code
 * cannot be added without its message.  Functions that take an fdx_error *
 * also leave a human-readable sentence there naming the file, offset or
 * exporter involved.
 */
#ifndef FLOWDEX_ERROR_H
#define FLOWDEX_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

/* X(name, value, message) */
#define FDX_ERROR_TABLE(X)                                                   \
    X(FDX_OK, 0, "success")                                                  \
    X(FDX_ENOMEM, -1, "out of memory")                                       \
    X(FDX_EIO, -2, "input/output error")                                     \
    X(FDX_ENOENT, -3, "no such file or directory")                           \
    X(FDX_EFORMAT, -4, "unrecognised file format")                           \
    X(FDX_ETRUNC, -5, "truncated input")                                     \
    X(FDX_ECORRUPT, -6, "corrupt input")                                     \
    X(FDX_EVERSION, -7, "unsupported format version")                        \
    X(FDX_ECHECKSUM, -8, "checksum mismatch")                                \
    X(FDX_EUSAGE, -9, "invalid argument")                                    \
    X(FDX_ENET, -10, "network error")                                        \
    X(FDX_ELIMIT, -11, "limit exceeded")                                     \
    X(FDX_EUNSUPPORTED, -12, "unsupported feature")                          \
    X(FDX_ENOTFOUND, -13, "not found")                                       \
    X(FDX_EACCES, -14, "permission denied")                                  \
    X(FDX_ECANTCREAT, -15, "output file cannot be created")

enum fdx_error_code {
#define FDX__ENUM(name, value, msg) name = value,
    FDX_ERROR_TABLE(FDX__ENUM)
#undef FDX__ENUM
};

/* Longest message kept in an fdx_error, including the terminating NUL. */
#define FDX_ERRMSG_MAX 512

/*
 * Error detail filled in by a failing call.  code is the same negative value
 * the call returned; msg is one line without a trailing newline, naming the
 * file and offset (or exporter) where that is known.
 */
typedef struct fdx_error {
    int code;
    char msg[FDX_ERRMSG_MAX];
} fdx_error;

/* Static message for a code; never NULL, "unknown error" for bad codes. */
const char *fdx_strerror(int code);

/* Symbolic name of a code ("FDX_ECORRUPT"); never NULL. */
const char *fdx_error_name(int code);

/*
 * Record an error: formats msg into err (when err is not NULL) and returns
 * code, so callers can write "return fdx_error_set(err, FDX_EIO, ...)".
 */
int fdx_error_set(fdx_error *err, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

#ifdef __cplusplus
}
#endif
#endif /* FLOWDEX_ERROR_H */
