/*
 * The file-mapping page-fault loop of page_fault2 and page_fault3 (will-it-scale's "separate file" tests).
 *
 * Each worker creates a file of its own in file_dir (default /tmp), sized to 128 MiB with ftruncate (a sparse file:
 * nothing is written to it) and unlinked at once, so it disappears with the worker. Then it loops:
 *   mmap the whole file, read-write, with map_flags (MAP_PRIVATE or MAP_SHARED); store one word in each 4 KiB page;
 *   munmap.
 * The first pass reads every page into the page cache; from then on the file stays cached (it is small next to the
 * machine's memory) and every store is one fault on a page-cache page:
 *   - MAP_PRIVATE (page_fault2): do_cow_fault, which allocates an anonymous page and copies the cached page into it;
 *     munmap frees the copies. The file never changes.
 *   - MAP_SHARED (page_fault3): do_shared_fault, which dirties the cached page (page_mkwrite) and maps it writable;
 *     munmap leaves the dirty pages in the cache. Nothing here writes them back; the kernel's flusher may, on its own
 *     schedule.
 * MADV_NOHUGEPAGE as in page_fault1 (it matters only if the filesystem maps large folios).
 */
#define _GNU_SOURCE
#include "file_fault.h"
#include "harness.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

void file_fault_worker(int map_flags, volatile uint64_t *pages, volatile const int *stop)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/engine-bench-%s.XXXXXX", file_dir, test_name) >= (int)sizeof path) {
        fprintf(stderr, "directory name too long: %s\n", file_dir);
        exit(2);
    }
    int fd = mkstemp(path);
    if (fd < 0) {
        die("mkstemp");
    }
    if (ftruncate(fd, (off_t)REGION_BYTES) != 0) {
        die("ftruncate");
    }
    if (unlink(path) != 0) {
        die("unlink");
    }

    while (!*stop) {
        char *region = mmap(NULL, REGION_BYTES, PROT_READ | PROT_WRITE, map_flags, fd, 0);
        if (region == MAP_FAILED) {
            die("mmap");
        }
#ifdef MADV_NOHUGEPAGE
        madvise(region, REGION_BYTES, MADV_NOHUGEPAGE);
#endif
        for (unsigned long offset = 0; offset < REGION_BYTES; offset += PAGE_BYTES) {
            *(volatile uint64_t *)(region + offset) = offset + 1;
            (*pages)++;
        }
        if (munmap(region, REGION_BYTES) != 0) {
            die("munmap");
        }
    }
    close(fd);
}
