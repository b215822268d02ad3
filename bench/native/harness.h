/*
 * The measuring side of the native page-fault references (page_fault1, page_fault2, page_fault3): harness.c starts
 * the workers, lets them warm up, counts the pages they touch over the measured window and prints one line. A test
 * supplies only its worker loop and its name.
 */
#ifndef ENGINE_BENCH_NATIVE_HARNESS_H
#define ENGINE_BENCH_NATIVE_HARNESS_H

#include <stdint.h>

/* Bytes per region (128 MiB, as in will-it-scale) and per page. */
#define REGION_BYTES (128UL << 20)
#define PAGE_BYTES 4096UL

/* The test's name, printed first on the result line ("page_fault2"). */
extern const char test_name[];

/* Directory in which file-backed tests create their file (--dir; default /tmp, as will-it-scale). */
extern const char *file_dir;

/*
 * The test's worker: loops until *stop is non-zero, adding one to *pages after each page it touches (a plain store
 * to the worker's own cache line). Runs on a thread, or in a forked process with --processes. Any set-up (a file
 * of its own) happens inside, before the first page, so it falls in the warm-up.
 */
void test_worker(int index, volatile uint64_t *pages, volatile const int *stop);

/* Prints perror(what) and exits with status 2. */
void die(const char *what);

#endif
