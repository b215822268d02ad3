/*
 * page_fault1 (will-it-scale's idea): anonymous page-fault throughput. Each worker loops:
 *   mmap 128 MiB private anonymous; store one word in each 4 KiB page; munmap.
 * Every store to a fresh page is one anonymous fault (the kernel allocates and zeroes a frame).
 *
 * Transparent huge pages would turn 512 faults into one; each region is madvise(MADV_NOHUGEPAGE)d so that every
 * 4 KiB page faults, whatever /sys/kernel/mm/transparent_hugepage/enabled says.
 */
#define _GNU_SOURCE
#include "harness.h"

#include <stddef.h>
#include <sys/mman.h>

const char test_name[] = "page_fault1";

void test_worker(int index, volatile uint64_t *pages, volatile const int *stop)
{
    (void)index;
    while (!*stop) {
        char *region = mmap(NULL, REGION_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (region == MAP_FAILED) {
            die("mmap");
        }
#ifdef MADV_NOHUGEPAGE
        madvise(region, REGION_BYTES, MADV_NOHUGEPAGE);
#endif
        for (unsigned long offset = 0; offset < REGION_BYTES; offset += PAGE_BYTES) {
            *(volatile uint64_t *)(region + offset) = offset + 1;
            /* Publish progress every page: a plain store to a private line, cheap next to a fault. */
            (*pages)++;
        }
        if (munmap(region, REGION_BYTES) != 0) {
            die("munmap");
        }
    }
}
