/*
** libFuzzer target: the raw Lua stack walker (lj_walk_vm) on a fuzzed
** process image (image.h), with and without the interpreter's registers.
*/
#include "image.h"

#define MAX_FRAMES 256

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  static struct lj_rawframe frames[MAX_FRAMES];
  struct image img;
  struct lj_walk w = {.frames = frames, .max = MAX_FRAMES};
  if (image_load(data, size, &img)) return 0;
  lj_walk_vm(IMAGE_PID, &img.vm, img.use_regs ? &img.regs : NULL, &w);
  if (w.n > w.max) __builtin_trap();
  return 0;
}
