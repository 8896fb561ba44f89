// The C anchor for the message queue: N producer processes and one consumer over a bounded
// many-producer ring in shared memory, each slot with a sequence word (claim by advancing the
// tail with a CAS, publish with a release store of the slot's sequence). Fixed 64-byte messages,
// both sides polling. Prints "consumer producers=N messages=M seconds=S Mmsg/s=R".
//   mpsc PRODUCERS MESSAGES_PER_PRODUCER
#define _GNU_SOURCE
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SLOTS 1024
#define PAYLOAD 64

struct slot {
  _Atomic uint32_t seq;
  uint32_t length;
  unsigned char payload[PAYLOAD];
};

struct ring {
  _Alignas(64) _Atomic uint32_t tail;
  _Alignas(64) _Atomic uint32_t head;
  _Alignas(64) _Atomic uint32_t go;
  _Alignas(64) struct slot slots[SLOTS];
};

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

static void produce(struct ring *r, uint32_t id, uint64_t count) {
  unsigned char msg[PAYLOAD];
  memset(msg, (int)id, sizeof msg);
  while (!atomic_load_explicit(&r->go, memory_order_acquire)) {
  }
  for (uint64_t i = 0; i < count; i++) {
    memcpy(msg, &id, 4);
    memcpy(msg + 4, &i, 4);
    for (;;) {
      uint32_t pos = atomic_load_explicit(&r->tail, memory_order_relaxed);
      struct slot *s = &r->slots[pos % SLOTS];
      uint32_t seq = atomic_load_explicit(&s->seq, memory_order_acquire);
      int32_t dif = (int32_t)(seq - pos);
      if (dif == 0) {
        if (atomic_compare_exchange_weak_explicit(&r->tail, &pos, pos + 1, memory_order_relaxed,
                                                  memory_order_relaxed)) {
          s->length = PAYLOAD;
          memcpy(s->payload, msg, PAYLOAD);
          atomic_store_explicit(&s->seq, pos + 1, memory_order_release);
          break;
        }
      }
      // dif < 0: full; dif > 0: another producer moved the tail. Either way, look again.
    }
  }
}

int main(int argc, char **argv) {
  int producers = argc > 1 ? atoi(argv[1]) : 1;
  uint64_t per = argc > 2 ? strtoull(argv[2], 0, 10) : 1000000;
  struct ring *r = mmap(0, sizeof *r, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (r == MAP_FAILED) return 1;
  for (uint32_t i = 0; i < SLOTS; i++) atomic_store(&r->slots[i].seq, i);
  for (int p = 0; p < producers; p++) {
    if (fork() == 0) {
      produce(r, (uint32_t)p, per);
      _exit(0);
    }
  }
  uint64_t total = per * producers, got = 0, checksum = 0;
  unsigned char out[PAYLOAD];
  atomic_store_explicit(&r->go, 1, memory_order_release);
  uint32_t head = 0;
  double t0 = 0;
  while (got < total) {
    struct slot *s = &r->slots[head % SLOTS];
    if (atomic_load_explicit(&s->seq, memory_order_acquire) != head + 1) continue;
    if (t0 == 0) t0 = now();
    memcpy(out, s->payload, s->length);
    checksum += out[4];
    atomic_store_explicit(&s->seq, head + SLOTS, memory_order_release);
    head++;
    got++;
  }
  double seconds = now() - t0;
  while (wait(0) > 0) {
  }
  printf("consumer producers=%d messages=%llu seconds=%.4f Mmsg/s=%.2f checksum=%llu\n", producers,
         (unsigned long long)got, seconds, got / seconds / 1e6, (unsigned long long)checksum);
  return 0;
}
