/*
 * page_fault1: anonymous page-fault throughput of the host kernel, the reference for the engine's
 * `pagefault` mode (bench/Engine.Benchmarks/PageFaultHarness.cs).
 *
 * Each worker (a thread, or a forked process with --processes) loops:
 *   mmap 128 MiB private anonymous; store one word in each 4 KiB page; munmap.
 * Every store to a fresh page is one anonymous page fault (the kernel allocates and zeroes a frame). Workers count
 * pages touched in a per-worker counter on its own cache line (in shared memory for processes). The main thread lets
 * them warm up, reads all counters, sleeps for the measured duration, reads them again, and prints the difference
 * divided by the elapsed time as one line:
 *
 *   page_fault1 mode=threads workers=2 duration_s=5.000 faults=... faults_per_sec=...
 *
 * Transparent huge pages would turn 512 faults into one; each region is madvise(MADV_NOHUGEPAGE)d so that every
 * 4 KiB page faults, whatever /sys/kernel/mm/transparent_hugepage/enabled says.
 *
 * Usage: page_fault1 [-t N] [--processes] [-d SECONDS] [-w WARMUP_SECONDS]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define REGION_BYTES (128UL << 20)
#define PAGE_BYTES 4096UL
#define MAX_WORKERS 64

/* One counter per worker, padded to its own cache line so workers do not share a line. */
struct slot {
    volatile uint64_t pages;
    char pad[64 - sizeof(uint64_t)];
};

static struct slot *slots;
static volatile int *stop_flag;

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_seconds(double seconds)
{
    struct timespec ts;
    ts.tv_sec = (time_t)seconds;
    ts.tv_nsec = (long)((seconds - (double)ts.tv_sec) * 1e9);
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static void die(const char *what)
{
    perror(what);
    exit(2);
}

static void worker_loop(int index)
{
    struct slot *mine = &slots[index];
    while (!*stop_flag) {
        char *region = mmap(NULL, REGION_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (region == MAP_FAILED) {
            die("mmap");
        }
#ifdef MADV_NOHUGEPAGE
        madvise(region, REGION_BYTES, MADV_NOHUGEPAGE);
#endif
        for (unsigned long offset = 0; offset < REGION_BYTES; offset += PAGE_BYTES) {
            *(volatile uint64_t *)(region + offset) = offset;
            /* Publish progress every page: a plain store to a private line, cheap next to a fault. */
            mine->pages++;
        }
        if (munmap(region, REGION_BYTES) != 0) {
            die("munmap");
        }
    }
}

static void *thread_main(void *arg)
{
    worker_loop((int)(intptr_t)arg);
    return NULL;
}

static uint64_t total_pages(int workers)
{
    uint64_t total = 0;
    for (int i = 0; i < workers; i++) {
        total += __atomic_load_n(&slots[i].pages, __ATOMIC_RELAXED);
    }
    return total;
}

static void usage(const char *argv0)
{
    fprintf(stderr, "usage: %s [-t WORKERS] [--processes] [-d SECONDS] [-w WARMUP_SECONDS]\n", argv0);
    exit(2);
}

int main(int argc, char **argv)
{
    int workers = 1;
    int processes = 0;
    double duration = 5.0;
    double warmup = 1.0;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-t") == 0 && i + 1 < argc) {
            workers = atoi(argv[++i]);
        } else if (strcmp(argv[i], "-d") == 0 && i + 1 < argc) {
            duration = atof(argv[++i]);
        } else if (strcmp(argv[i], "-w") == 0 && i + 1 < argc) {
            warmup = atof(argv[++i]);
        } else if (strcmp(argv[i], "--processes") == 0) {
            processes = 1;
        } else {
            usage(argv[0]);
        }
    }

    if (workers < 1 || workers > MAX_WORKERS || duration <= 0 || warmup < 0) {
        usage(argv[0]);
    }

    /* Shared anonymous memory, so forked workers' counters and the stop flag are visible to the parent. */
    size_t shared_bytes = sizeof(struct slot) * (MAX_WORKERS + 1);
    char *shared = mmap(NULL, shared_bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (shared == MAP_FAILED) {
        die("mmap shared");
    }
    memset(shared, 0, shared_bytes);
    slots = (struct slot *)shared;
    stop_flag = (volatile int *)(shared + sizeof(struct slot) * MAX_WORKERS);

    pthread_t threads[MAX_WORKERS];
    pid_t children[MAX_WORKERS];
    for (int i = 0; i < workers; i++) {
        if (processes) {
            pid_t pid = fork();
            if (pid < 0) {
                die("fork");
            }
            if (pid == 0) {
                worker_loop(i);
                _exit(0);
            }
            children[i] = pid;
        } else if (pthread_create(&threads[i], NULL, thread_main, (void *)(intptr_t)i) != 0) {
            die("pthread_create");
        }
    }

    sleep_seconds(warmup);
    uint64_t before = total_pages(workers);
    double start = now_seconds();
    sleep_seconds(duration);
    uint64_t after = total_pages(workers);
    double elapsed = now_seconds() - start;

    __atomic_store_n(stop_flag, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < workers; i++) {
        if (processes) {
            int status;
            if (waitpid(children[i], &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                fprintf(stderr, "worker process %d failed\n", i);
                return 1;
            }
        } else {
            pthread_join(threads[i], NULL);
        }
    }

    uint64_t faults = after - before;
    printf("page_fault1 mode=%s workers=%d duration_s=%.3f faults=%llu faults_per_sec=%.0f\n",
           processes ? "processes" : "threads", workers, elapsed, (unsigned long long)faults, (double)faults / elapsed);
    return 0;
}
