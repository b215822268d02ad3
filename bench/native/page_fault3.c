/*
 * page_fault3 (will-it-scale's idea): shared file mapping faults. Each worker maps its own 128 MiB file MAP_SHARED,
 * stores one word per page (each store dirties the cached page and maps it writable), and unmaps; see file_fault.c.
 */
#include "file_fault.h"
#include "harness.h"

#include <sys/mman.h>

const char test_name[] = "page_fault3";

void test_worker(int index, volatile uint64_t *pages, volatile const int *stop)
{
    (void)index;
    file_fault_worker(MAP_SHARED, pages, stop);
}
