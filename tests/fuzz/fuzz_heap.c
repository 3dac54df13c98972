/*
** libFuzzer target: the heap walker (census, graph from the roots,
** reference paths and flame graph labels) on a fuzzed image, through
** tmem's cached and batched reads as `luaspy heap` does, with small
** limits so that one input stays fast.
*/
#include <string.h>

#include "../../src/heap/heap.h"
#include "image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  const struct heap_limits lim = {.max_objects = 4096, .max_entries = 1024};
  struct image img;
  struct heap_ctx c;
  struct heap_snap s;
  struct tmem *mem;
  if (image_load(data, size, &img)) return 0;
  if (!(mem = tmem_new(IMAGE_PID, 64u << 10))) return 0;
  heap_ctx_init(&c, mem, &img.vm, &lim);
  memset(&s, 0, sizeof(s));
  s.vm = &img.vm;
  heap_census(&c, &s);
  tmem_flush(mem);
  if (heap_graph(&c, &s) == 0) {
    char buf[512];
    for (size_t i = 0; i < s.nobjs && i < 64; i++) {
      heap_path(&c, &s, (uint32_t)i, buf, sizeof(buf));
      heap_label(&c, &s, (uint32_t)i, (int)(i & 1), buf, sizeof(buf));
    }
  }
  heap_snap_free(&s);
  tmem_free(mem);
  return 0;
}
