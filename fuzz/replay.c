/*
 * Replays inputs through a fuzz target without libFuzzer, so the seed
 * corpus and every crash once found run as a regression test in the
 * normal build (any compiler, any sanitizer or none).
 *
 *     replay-<target> DIR|FILE...
 *
 * Every regular file of each directory (hidden files skipped), in name
 * order, is read into a buffer of exactly its size and passed to
 * LLVMFuzzerTestOneInput().  Exits 1 when no input was found, so a moved
 * corpus cannot pass silently; a crash or broken invariant aborts.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

static int replay_file(const char *path)
{
    FILE *fp = fopen(path, "rb");
    uint8_t *buf = NULL;
    long n;

    if (fp == NULL || fseek(fp, 0, SEEK_END) != 0 || (n = ftell(fp)) < 0 ||
        fseek(fp, 0, SEEK_SET) != 0) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        if (fp != NULL)
            fclose(fp);
        return -1;
    }
    buf = malloc(n > 0 ? (size_t)n : 1);
    if (buf == NULL || fread(buf, 1, (size_t)n, fp) != (size_t)n) {
        fprintf(stderr, "replay: %s: read failed\n", path);
        free(buf);
        fclose(fp);
        return -1;
    }
    fclose(fp);
    fprintf(stderr, "replay: %s (%ld bytes)\n", path, n);
    LLVMFuzzerTestOneInput(buf, (size_t)n);
    free(buf);
    return 0;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

static int replay_dir(const char *dir, long *count)
{
    struct dirent **names;
    int n = scandir(dir, &names, NULL, by_name), rc = 0;

    if (n < 0) {
        fprintf(stderr, "replay: %s: %s\n", dir, strerror(errno));
        return -1;
    }
    for (int i = 0; i < n; i++) {
        char path[4096];
        struct stat sb;

        snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);
        if (names[i]->d_name[0] != '.' && stat(path, &sb) == 0 &&
            S_ISREG(sb.st_mode)) {
            if (replay_file(path) != 0)
                rc = -1;
            else
                (*count)++;
        }
        free(names[i]);
    }
    free(names);
    return rc;
}

int main(int argc, char **argv)
{
    long count = 0;
    int rc = 0;

    for (int i = 1; i < argc; i++) {
        struct stat sb;

        if (stat(argv[i], &sb) == 0 && S_ISDIR(sb.st_mode))
            rc |= replay_dir(argv[i], &count) != 0;
        else if (replay_file(argv[i]) == 0)
            count++;
        else
            rc = 1;
    }
    printf("replayed %ld inputs\n", count);
    if (count == 0) {
        fprintf(stderr, "replay: no input found\n");
        return 1;
    }
    return rc;
}
