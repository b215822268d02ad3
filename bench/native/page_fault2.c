/*
 * page_fault2 (will-it-scale's idea): private file mapping faults. Each worker maps its own 128 MiB file
 * MAP_PRIVATE, stores one word per page (each store copies the cached page into a new anonymous page), and unmaps;
 * see file_fault.c.
 */
#include "file_fault.h"
#include "harness.h"

#include <sys/mman.h>

const char test_name[] = "page_fault2";

void test_worker(int index, volatile uint64_t *pages, volatile const int *stop)
{
    (void)index;
    file_fault_worker(MAP_PRIVATE, pages, stop);
}
