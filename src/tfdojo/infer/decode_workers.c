/* Worker threads for the native decode step: one task (a matrix product, an attention) split into chunks that
 * the calling thread and up to `threads - 1` workers take from a shared counter.
 *
 * A decode step hands out ~150 tasks of 10-500 µs each, so waking a sleeping thread for each (a futex, ~5-50 µs)
 * would cost as much as the work. Workers therefore spin for the next task (about a millisecond, `SPIN` pauses),
 * then sleep on a condition variable until one comes; at the end of a step they are parked (asleep at once). Chunks are taken dynamically, and the caller takes them
 * too: a worker the OS has not scheduled (another process on the core) delays a task by at most the chunk it
 * holds, never by a whole timeslice per task as a fixed split with a barrier did (an OpenMP split measured 1,050 ms
 * against 11 ms for 30 layers on a loaded 2-core machine).
 *
 * The state of the current task is one 64-bit word: epoch (16 bits) | chunks (16) | next chunk (32). Taking a
 * chunk is one fetch_add on it, which tells the taker which task and how many chunks in one read: a worker late
 * from an old task reads next >= chunks and goes back to waiting, never runs a chunk of a task it did not see.
 * A new task is published only after every chunk of the last is done. After fork() the child has no workers:
 * the pool forgets them and starts new ones on first use. ctypes releases the GIL during the call, so two Python
 * threads may decode at once: the pool serves one caller at a time, and a second runs its chunks alone.
 */
#include <immintrin.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>

#define MAX_WORKERS 63
#define SPIN (1 << 15) /* pauses before sleeping: ~1 ms (a pause took 27 ns on the reference EPYC) */
#define YIELD_EVERY 256 /* pauses between offers of the core (~7 µs): a waiting thread must not hold a core that
                           the thread it waits for, or our other thread, needs (both on one core when another job
                           has the other: spinning through a whole timeslice there made two threads 2.5x slower) */

static inline void pause_or_yield(int spins) {
    if (spins % YIELD_EVERY == YIELD_EVERY - 1) sched_yield();
    else _mm_pause();
}

typedef void (*tfd_chunk_fn)(void *arg, int chunk);

static struct {
    pthread_mutex_t owner; /* held by the caller using the workers */
    pthread_mutex_t lock;
    pthread_cond_t wake;
    _Atomic uint64_t word; /* epoch << 48 | chunks << 32 | next */
    atomic_int done;       /* chunks of the current task finished */
    atomic_int sleepers;   /* workers waiting on `wake` */
    atomic_int parked;     /* set between decode steps: wait asleep, not spinning */
    tfd_chunk_fn fn;       /* the current task, written before its word is published */
    void *arg;
    int started;           /* workers running */
    int fork_handler;
} pool = {.owner = PTHREAD_MUTEX_INITIALIZER, .lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER};

static inline unsigned epoch_of(uint64_t w) { return (unsigned)(w >> 48); }

/* take chunks of the task in `word` until none is left */
static void take_chunks(void) {
    for (;;) {
        uint64_t w = atomic_fetch_add_explicit(&pool.word, 1, memory_order_acq_rel);
        int chunks = (int)((w >> 32) & 0xFFFF), chunk = (int)(uint32_t)w;
        if (chunk >= chunks) return;
        pool.fn(pool.arg, chunk);
        atomic_fetch_add_explicit(&pool.done, 1, memory_order_release);
    }
}

static void *worker(void *unused) {
    (void)unused;
    unsigned seen = epoch_of(atomic_load(&pool.word));
    for (;;) {
        int spins = 0;
        while (epoch_of(atomic_load_explicit(&pool.word, memory_order_acquire)) == seen) {
            if (++spins < SPIN && !atomic_load_explicit(&pool.parked, memory_order_relaxed)) {
                pause_or_yield(spins);
                continue;
            }
            pthread_mutex_lock(&pool.lock);
            atomic_fetch_add(&pool.sleepers, 1);
            while (epoch_of(atomic_load(&pool.word)) == seen) pthread_cond_wait(&pool.wake, &pool.lock);
            atomic_fetch_sub(&pool.sleepers, 1);
            pthread_mutex_unlock(&pool.lock);
        }
        seen = epoch_of(atomic_load(&pool.word));
        take_chunks();
    }
    return NULL;
}

static void forget_workers(void) { /* in a forked child: the threads did not come along */
    pool.started = 0;
    pthread_mutex_init(&pool.owner, NULL);
    pthread_mutex_init(&pool.lock, NULL);
    pthread_cond_init(&pool.wake, NULL);
    atomic_store(&pool.sleepers, 0);
}

/* start workers until `wanted` run (or the OS refuses one); returns how many run. Called holding `owner`. */
static int ensure_workers(int wanted) {
    if (!pool.fork_handler) {
        pthread_atfork(NULL, NULL, forget_workers);
        pool.fork_handler = 1;
    }
    if (wanted > MAX_WORKERS) wanted = MAX_WORKERS;
    while (pool.started < wanted) {
        pthread_t thread;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int failed = pthread_create(&thread, &attr, worker, NULL);
        pthread_attr_destroy(&attr);
        if (failed) break;
        pool.started++;
    }
    return pool.started;
}

static void run_alone(int chunks, tfd_chunk_fn fn, void *arg) {
    for (int c = 0; c < chunks; c++) fn(arg, c);
}

/* fn(arg, c) for every c in [0, chunks), on this thread and up to threads - 1 workers; returns when all are done */
void tfd_run_chunks(int threads, int chunks, tfd_chunk_fn fn, void *arg) {
    if (threads <= 1 || chunks <= 1 || pthread_mutex_trylock(&pool.owner) != 0) {
        run_alone(chunks, fn, arg); /* one thread asked, nothing to share, or another caller has the workers */
        return;
    }
    if (ensure_workers(threads - 1) == 0) {
        pthread_mutex_unlock(&pool.owner);
        run_alone(chunks, fn, arg);
        return;
    }
    uint64_t epoch = (epoch_of(atomic_load(&pool.word)) + 1) & 0xFFFF;
    pool.fn = fn;
    pool.arg = arg;
    atomic_store_explicit(&pool.done, 0, memory_order_relaxed);
    atomic_store_explicit(&pool.parked, 0, memory_order_relaxed);
    atomic_store(&pool.word, epoch << 48 | (uint64_t)chunks << 32); /* publish: seq_cst, before reading sleepers */
    if (atomic_load(&pool.sleepers) > 0) {
        pthread_mutex_lock(&pool.lock);
        pthread_cond_broadcast(&pool.wake);
        pthread_mutex_unlock(&pool.lock);
    }
    take_chunks();
    /* the last chunks are a worker's: wait, offering the core in case that worker waits for it */
    for (int spins = 0; atomic_load_explicit(&pool.done, memory_order_acquire) < chunks; spins++) pause_or_yield(spins);
    pthread_mutex_unlock(&pool.owner);
}

/* the decode step is over: workers sleep until the next one instead of spinning through the caller's Python work,
 * where torch's own threads want the cores (spinning there cost ~3 ms a token at two threads) */
void tfd_park_workers(void) { atomic_store(&pool.parked, 1); }
