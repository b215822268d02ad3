/*
 * The harness of the native page-fault references, the kernel's side of the engine's `pagefault` mode
 * (bench/Engine.Benchmarks/PageFaultHarness.cs). Linked with one test (page_fault1.c, page_fault2.c or
 * page_fault3.c), which supplies test_worker() and test_name.
 *
 * N workers (threads, or forked processes with --processes) each run the test's loop and count the pages they
 * touch in a per-worker counter on its own cache line (in shared memory, so forked workers' counts are visible).
 * The main thread lets them warm up, reads all counters, sleeps for the measured duration, reads them again, and
 * prints the difference divided by the elapsed time as one line:
 *
 *   page_fault2 mode=threads workers=2 duration_s=5.000 faults=... faults_per_sec=... minflt_per_page=...
 *
 * minflt_per_page is the process's minor faults (getrusage) over the same window divided by the pages touched: 1.000
 * when every page touched took exactly one fault. In processes mode the faults happen in the children, which
 * getrusage(RUSAGE_SELF) cannot see, so it prints "n/a".
 *
 * Usage: page_faultN [-t N] [--processes] [-d SECONDS] [-w WARMUP_SECONDS] [--dir DIRECTORY]
 */
#define _GNU_SOURCE
#include "harness.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_WORKERS 64

/* One counter per worker, padded to its own cache line so workers do not share a line. */
struct slot {
    volatile uint64_t pages;
    char pad[64 - sizeof(uint64_t)];
};

const char *file_dir = "/tmp";

static struct slot *slots;
static volatile int *stop_flag;

void die(const char *what)
{
    perror(what);
    exit(2);
}

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

static long minor_faults(void)
{
    struct rusage usage;
    if (getrusage(RUSAGE_SELF, &usage) != 0) {
        die("getrusage");
    }
    return usage.ru_minflt;
}

static void *thread_main(void *arg)
{
    int index = (int)(intptr_t)arg;
    test_worker(index, &slots[index].pages, stop_flag);
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
    fprintf(stderr, "usage: %s [-t WORKERS] [--processes] [-d SECONDS] [-w WARMUP_SECONDS] [--dir DIRECTORY]\n", argv0);
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
        } else if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc) {
            file_dir = argv[++i];
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
                test_worker(i, &slots[i].pages, stop_flag);
                _exit(0);
            }
            children[i] = pid;
        } else if (pthread_create(&threads[i], NULL, thread_main, (void *)(intptr_t)i) != 0) {
            die("pthread_create");
        }
    }

    sleep_seconds(warmup);
    long faults_before = minor_faults();
    uint64_t before = total_pages(workers);
    double start = now_seconds();
    sleep_seconds(duration);
    uint64_t after = total_pages(workers);
    double elapsed = now_seconds() - start;
    long faults_after = minor_faults();

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

    uint64_t pages = after - before;
    char per_page[32] = "n/a";
    if (!processes && pages > 0) {
        snprintf(per_page, sizeof per_page, "%.3f", (double)(faults_after - faults_before) / (double)pages);
    }
    printf("%s mode=%s workers=%d duration_s=%.3f faults=%llu faults_per_sec=%.0f minflt_per_page=%s\n", test_name,
           processes ? "processes" : "threads", workers, elapsed, (unsigned long long)pages, (double)pages / elapsed,
           per_page);
    return 0;
}
