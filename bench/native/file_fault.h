/* The loop shared by page_fault2 (MAP_PRIVATE) and page_fault3 (MAP_SHARED); see file_fault.c. */
#ifndef ENGINE_BENCH_NATIVE_FILE_FAULT_H
#define ENGINE_BENCH_NATIVE_FILE_FAULT_H

#include <stdint.h>

void file_fault_worker(int map_flags, volatile uint64_t *pages, volatile const int *stop);

#endif
